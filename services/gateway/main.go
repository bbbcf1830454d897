// Command gateway is Inlet's gateway service. Configuration: see pkg/app.
package main

import "github.com/inlet-dev/inlet/pkg/app"

func main() { app.Main("gateway") }
