// Package contract holds tests, no code: they run the Go client (module
// pkg/client, which may import nothing of the server) against the server's
// own gateway, projector and JetStream broker, so the two sides cannot drift
// apart on the wire.
package contract
