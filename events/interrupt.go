package events

import "time"

// EventInterrupt is the command a client publishes on
// imports.<org>.<resource>.interrupt to stop an import: an Interrupt, bare or
// as the data of a CloudEvent whose subject is the import id. It is a
// command, not an event about an import, so it is not one of AllEvents.
const EventInterrupt = "interrupt"

// Commands lists the commands a client may publish besides import requests.
var Commands = []string{EventInterrupt}

// Interrupt asks import ImportID to stop (spec §6, POST …/interrupt): one that
// has not started processing ends at once; a running one stops at its next
// batch boundary and its stats count what was applied.
type Interrupt struct {
	// ImportID may be left empty in a CloudEvent: its subject names the import.
	ImportID    string    `json:"import_id"`
	RequestedAt time.Time `json:"requested_at"`
	// By is who asked (the gateway sets the API key's principal).
	By     string `json:"by,omitempty"`
	Reason string `json:"reason,omitempty"`
}
