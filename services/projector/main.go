// Command projector is Inlet's projector service. Configuration: see internal/app.
package main

import "github.com/inlet-dev/inlet/internal/app"

func main() { app.Main("projector") }
