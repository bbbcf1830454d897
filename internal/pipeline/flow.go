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
	// ReadsRows says whether the phase reads its input rows in an import
	// with these options (nil: always); rows no phase reads are not stored.
	ReadsRows func(events.Options) bool
}{
	{events.PhasePrevalidation, PerBatch, nil}, // fed by import-requested events
	{events.PhasePreparsing, Barrier, nil},     // duplicates across the whole file
	{events.PhaseTransforming, PerBatch, nil},
	{events.PhaseParsing, Barrier, nil}, // rows resolving to the same record across the file
	{events.PhaseValidation, PerBatch, nil},
	{events.PhaseProcessing, Gated, nil}, // nothing is written until every row was checked
	// An overwrite keeps the records the file touched: the only use of the rows.
	{events.PhaseCleanup, Barrier, func(o events.Options) bool { return o.Action == events.ActionOverwrite }},
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

// rowsRead reports whether the phase after phase reads the rows it passes
// on in an import with options o.
func rowsRead(phase string, o events.Options) bool {
	i := flowIndex(phase)
	if i < 0 || i+1 >= len(Flow) {
		return false
	}
	reads := Flow[i+1].ReadsRows
	return reads == nil || reads(o)
}

// entryOf returns how work enters phase.
func entryOf(phase string) Entry {
	if i := flowIndex(phase); i >= 0 {
		return Flow[i].Entry
	}
	return PerBatch
}
