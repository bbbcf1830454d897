// Command webhooks is Inlet's webhooks service. Configuration: see internal/app.
package main

import "github.com/inlet-dev/inlet/internal/app"

func main() { app.Main("webhooks") }
