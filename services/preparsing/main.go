// Command preparsing is the preparsing phase of the Inlet import pipeline: one durable
// JetStream consumer shared by every replica. Configuration: see pkg/app.
package main

import "github.com/inlet-dev/inlet/pkg/app"

func main() { app.Main("preparsing") }
