package app

import (
	"fmt"
	"slices"

	"github.com/inlet-dev/inlet/events"
)

// Role is one part of Inlet that a process runs. Each service binary runs one
// (the all-in-one runs them all); replicas of a role share its durable
// consumers, so roles scale independently.
type Role string

const (
	// Intake starts imports and ends those that cannot go on: it takes
	// import requests (running prevalidation on them), interrupt commands,
	// files uploaded through signed URLs, and the dead letters of work
	// JetStream stopped delivering. The prevalidation service runs it.
	Intake Role = "intake"
	// The per-batch phases after prevalidation, each its own service.
	Preparsing   Role = events.PhasePreparsing
	Transforming Role = events.PhaseTransforming
	Parsing      Role = events.PhaseParsing
	Validation   Role = events.PhaseValidation
	Processing   Role = events.PhaseProcessing
	Cleanup      Role = events.PhaseCleanup
	// Projector builds the import views from the events, serves the read
	// API, and runs the sweep that ends imports whose time is up, so that a
	// deadline holds while every phase is down.
	Projector Role = "projector"
	// Gateway serves the write API.
	Gateway Role = "gateway"
	// Webhooks delivers the events of each organization's imports to the
	// HTTP endpoints it subscribed (internal/webhooks): the consumer of
	// INLET_EVENTS that records deliveries, and the dispatcher that sends them.
	Webhooks Role = "webhooks"
)

// PhaseRoles are the roles that each run one phase after prevalidation.
var PhaseRoles = []Role{Preparsing, Transforming, Parsing, Validation, Processing, Cleanup}

// Pipeline is every role that works on imports: the intake and the phases.
var Pipeline = slices.Concat([]Role{Intake}, PhaseRoles)

// Everything is what the all-in-one server runs.
var Everything = slices.Concat(Pipeline, []Role{Projector, Gateway, Webhooks})

// ServiceRoles are the roles of the service binary named service.
func ServiceRoles(service string) ([]Role, error) {
	switch service {
	case "inlet":
		return Everything, nil
	case events.PhasePrevalidation:
		return []Role{Intake}, nil
	}
	if r := Role(service); slices.Contains(Everything, r) && r != Intake {
		return []Role{r}, nil
	}
	return nil, fmt.Errorf("no service %q", service)
}
