// Package pipeline is the harness every phase service runs: it receives a
// phase's work message, streams the input batches from the blob store through
// the phase function, commits the output batch, the rejected rows and the
// batch's stats, and publishes what comes next, all idempotently.
package pipeline

import "github.com/inlet-dev/inlet/events"

// Entry says how a phase's work is handed to it.
type Entry int

const (
	// PerBatch: batch b is sent as soon as the previous phase committed it.
	PerBatch Entry = iota
	// Gated: every batch is sent, one message each, once the whole previous
	// phase has completed and its gate let the import through; with
	// skip_errors there is nothing to gate, and it streams like PerBatch.
	Gated
	// Barrier: one message for the whole import once the previous phase has
	// completed; the phase sees every batch (whole-file work: duplicates),
	// and hands each batch on as soon as it commits it.
	Barrier
)

// Flow is the phase order and how work enters each phase. Batch b of every
// phase holds what remains of the same rows of the file.
var Flow = []struct {
	Phase string
	Entry Entry
}{
	{events.PhasePrevalidation, PerBatch}, // fed by import-requested events
	{events.PhasePreparsing, Barrier},     // duplicates across the whole file
	{events.PhaseTransforming, PerBatch},
	{events.PhaseParsing, Barrier}, // rows resolving to the same record across the file
	{events.PhaseValidation, PerBatch},
	{events.PhaseProcessing, Gated}, // nothing is written until every row was checked
	{events.PhaseCleanup, Barrier},
}

func flowIndex(phase string) int {
	for i, f := range Flow {
		if f.Phase == phase {
			return i
		}
	}
	return -1
}

// next returns the phase after phase and how it is entered; ok is false for the last.
func next(phase string) (string, Entry, bool) {
	i := flowIndex(phase)
	if i < 0 || i+1 >= len(Flow) {
		return "", 0, false
	}
	return Flow[i+1].Phase, Flow[i+1].Entry, true
}

// entryOf returns how work enters phase.
func entryOf(phase string) Entry {
	if i := flowIndex(phase); i >= 0 {
		return Flow[i].Entry
	}
	return PerBatch
}
