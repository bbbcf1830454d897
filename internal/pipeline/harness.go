package pipeline

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/rs/zerolog"

	"github.com/inlet-dev/inlet/events"
	"github.com/inlet-dev/inlet/internal/blob"
	"github.com/inlet-dev/inlet/internal/faults"
	"github.com/inlet-dev/inlet/internal/imports"
	"github.com/inlet-dev/inlet/internal/resources"
	"github.com/inlet-dev/inlet/internal/store"
	"github.com/inlet-dev/inlet/internal/textlimit"
)

// Publisher is what the harness needs from the broker.
type Publisher interface {
	Publish(ctx context.Context, subject, msgID string, payload []byte) error
	PublishEvent(ctx context.Context, subject string, ce events.CloudEvent) error
}

// Registry finds resource definitions.
type Registry interface {
	Get(name string) (*resources.Resource, bool)
}

// Env is what a phase runs against.
type Env struct {
	Blobs    blob.Store
	Records  store.RecordStore
	Registry Registry
	Pub      Publisher
	Log      zerolog.Logger
	// Source is the CloudEvents source of the events this process publishes.
	Source string
	// BatchSize is the number of file rows per batch.
	BatchSize int
	// TempDir holds batch files while they are written.
	TempDir string
	// Delivery is how many times a message has been delivered.
	Delivery func(*message.Message) uint64
	// MaxDeliver is the consumer's redelivery bound: the last delivery of a
	// failing message fails the import instead of leaving it processing.
	MaxDeliver uint64
	// Backoff paces the runs of a handler that met a transient fault
	// (faults.Transient; default faults.DefaultBackoff).
	Backoff faults.Backoff
	// Parallelism is how many batches one message of a barrier phase works
	// on at once (default: GOMAXPROCS; the app sets INLET_CONCURRENCY, as
	// many as the process handles when the batches come one per message).
	// The whole file is in that message, and nothing else of the import can
	// run meanwhile.
	Parallelism int
	// Settle is the processing phase, run by a forced timeout over the batches
	// the store applied but whose commit died with their process.
	Settle Phase
	// StopPoll is how often a handler at work looks for a stop request of
	// its import (interrupt, deadline), so that one takes effect within
	// seconds even inside a long batch (default 2s).
	StopPoll time.Duration
	// RevertWindow is how long after its creation an import can be
	// reverted (imports.CheckRevertible; 0: for ever).
	RevertWindow time.Duration
	// Observer is told of every batch committed (metrics); nil tells no one.
	Observer BatchObserver
	Now      func() time.Time
}

// BatchObserver is told of every batch a phase commits, with its stats.
type BatchObserver interface {
	BatchCommitted(phase string, st *events.BatchProgress)
}

func (e *Env) now() time.Time {
	if e.Now != nil {
		return e.Now().UTC()
	}
	return time.Now().UTC()
}

// WorkMessage is the body of an internal phase work message.
type WorkMessage struct {
	Options events.Options `json:"options"`
	Phase   string         `json:"phase"`
	// Batch is the batch to work on, or AllBatches for a barrier phase.
	Batch   int `json:"batch"`
	Batches int `json:"batches"`
}

// AllBatches marks a work message for a barrier phase.
const AllBatches = -1

// Job is one import as a phase sees it.
type Job struct {
	Options  events.Options
	Resource *resources.Resource
	Batches  int
	Log      zerolog.Logger
}

// ID is the import id.
func (j *Job) ID() string { return j.Options.ID }

// Scope is where the import's records live.
func (j *Job) Scope() store.Scope {
	return store.Scope{Org: j.Options.OrganizationID, Mode: string(j.Options.Mode), Resource: j.Options.Resource}
}

// Phase is the logic of one phase; the harness does everything else.
type Phase interface {
	Name() string
	// Run processes the work's batches. It must be deterministic given its
	// inputs and the store: a redelivered message runs it again.
	Run(ctx context.Context, job *Job, w Work) error
}

// FatalError ends the import as failed without retrying: the input, not the
// system, is at fault (unreadable file, unknown resource).
type FatalError struct{ Reason string }

func (e *FatalError) Error() string { return e.Reason }

// Fatal builds a FatalError.
func Fatal(format string, args ...any) error {
	return &FatalError{Reason: textlimit.Clip(fmt.Sprintf(format, args...), textlimit.Reason)}
}

// Harness runs phases.
type Harness struct {
	Env *Env
}

// New builds a harness.
func New(env *Env) *Harness {
	if env.BatchSize <= 0 {
		env.BatchSize = 2000
	}
	if env.StopPoll <= 0 {
		env.StopPoll = 2 * time.Second
	}
	if env.Backoff.First <= 0 {
		env.Backoff = faults.DefaultBackoff
	}
	if env.MaxDeliver == 0 {
		env.MaxDeliver = 10
	}
	if env.Parallelism <= 0 {
		env.Parallelism = runtime.GOMAXPROCS(0)
	}
	return &Harness{Env: env}
}

func (h *Harness) publishEvent(ctx context.Context, o events.Options, event, id string, data any) error {
	ce, err := events.New(id, h.Env.Source, event, o.ID, data)
	if err != nil {
		return err
	}
	return h.Env.Pub.PublishEvent(ctx, events.Subject(o.OrganizationID, o.Resource, event), ce)
}

// statsAtOnce is how many stats objects (small, many) are read or written at once.
const statsAtOnce = 8

func (h *Harness) readStats(ctx context.Context, id, phase string, b int) (events.BatchProgress, error) {
	var st events.BatchProgress
	err := h.getJSON(ctx, imports.StatsKey(id, phase, b), &st)
	return st, err
}

func (h *Harness) getJSON(ctx context.Context, key string, v any) error {
	return getJSON(ctx, h.Env.Blobs, key, v)
}

func getJSON(ctx context.Context, blobs blob.Store, key string, v any) error {
	rc, err := blobs.Get(ctx, key)
	if err != nil {
		return err
	}
	defer rc.Close()
	if err := json.NewDecoder(rc).Decode(v); err != nil {
		return fmt.Errorf("decode %s: %w", key, err)
	}
	return nil
}

func (h *Harness) putJSON(ctx context.Context, key string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return h.Env.Blobs.Put(ctx, key, bytes.NewReader(b), int64(len(b)))
}
