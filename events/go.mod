module github.com/inlet-dev/inlet/events

go 1.26.0
