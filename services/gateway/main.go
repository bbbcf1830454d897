// Command gateway is Inlet's gateway service. Configuration: see internal/app.
package main

import "github.com/inlet-dev/inlet/internal/app"

func main() { app.Main("gateway") }
