module github.com/inlet-dev/inlet/services

go 1.26.0

require (
	github.com/inlet-dev/inlet/events v0.0.0
	github.com/inlet-dev/inlet/pkg v0.0.0
)

replace (
	github.com/inlet-dev/inlet/events => ../events
	github.com/inlet-dev/inlet/pkg => ../pkg
)
