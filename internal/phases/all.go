package phases

import (
	"github.com/inlet-dev/inlet/events"
	"github.com/inlet-dev/inlet/internal/blob"
	"github.com/inlet-dev/inlet/internal/pipeline"
	"github.com/inlet-dev/inlet/internal/store"
)

// All returns the phases that consume work messages, by name (prevalidation,
// the source phase, is Prevalidation{} and reads import requests instead).
func All(records store.RecordStore, blobs blob.Store) map[string]pipeline.Phase {
	return map[string]pipeline.Phase{
		events.PhasePreparsing:   revertPassesThrough{Preparsing{}},
		events.PhaseTransforming: revertPassesThrough{Transforming{Records: records}},
		events.PhaseParsing:      revertPassesThrough{Parsing{Records: records}},
		events.PhaseValidation:   revertPassesThrough{Validation{Records: records}},
		events.PhaseProcessing:   Processing{Records: records},
		events.PhaseCleanup:      Cleanup{Records: records, Blobs: blobs},
	}
}
