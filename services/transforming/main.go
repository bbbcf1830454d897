// Command transforming is the transforming phase of the Inlet import pipeline: one durable
// JetStream consumer shared by every replica. Configuration: see internal/app.
package main

import "github.com/inlet-dev/inlet/internal/app"

func main() { app.Main("transforming") }
