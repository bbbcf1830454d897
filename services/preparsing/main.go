// Command preparsing is the preparsing phase of the Inlet import pipeline: one durable
// JetStream consumer shared by every replica. Configuration: see internal/app.
package main

import "github.com/inlet-dev/inlet/internal/app"

func main() { app.Main("preparsing") }
