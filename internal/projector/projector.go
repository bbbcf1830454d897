// Package projector builds the import views from the public events and
// serves them (the read side of spec §6). A view is a pure function of the
// set of events seen for an import, so redeliveries, reordering, replicas
// racing on one view and a rebuild from the stream all converge on the same
// document.
package projector

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/inlet-dev/inlet/events"
	"github.com/inlet-dev/inlet/internal/blob"
	"github.com/inlet-dev/inlet/internal/faults"
	"github.com/inlet-dev/inlet/internal/imports"
	"github.com/inlet-dev/inlet/internal/store"
	"github.com/inlet-dev/inlet/internal/topology"
)

// Durable is the JetStream consumer every projector replica shares. Bump
// the version when its settings change (JetStream refuses some changes).
const Durable = "projector-v2"

// ErrMalformed marks an event that can never be applied (bad subject or
// data). Retrying cannot cure it, so Run acknowledges it after logging.
var ErrMalformed = errors.New("projector: malformed event")

// maxBatch bounds the batch numbers a view tracks: the seen-set is a bitmap,
// and a corrupt batch number must not blow a view up to megabytes.
const maxBatch = 1 << 22

// Projector applies events to the views in a ViewStore.
type Projector struct {
	views store.ViewStore
	log   zerolog.Logger
}

// New returns a projector writing to views.
func New(views store.ViewStore, log zerolog.Logger) *Projector {
	return &Projector{views: views, log: log}
}

// Where a view's import object came from. A higher rank replaces a lower
// one whatever the arrival order, so a late "queued" never undoes "started".
const (
	rankSkeleton  = 0 // only progress seen: built from the subject
	rankRequested = 1
	rankQueued    = 2
	rankStarted   = 3
	rankTerminal  = 4
)

// viewDoc is what the store keeps per import: the import object plus what is
// needed to recompute its phases and stats, never the individual events.
type viewDoc struct {
	Import    events.Import           `json:"import"`
	Rank      int                     `json:"rank"`
	Phases    map[string]*phaseDoc    `json:"phases,omitempty"`
	Completed map[string]completedDoc `json:"completed,omitempty"`
	// What recompute derives must not feed back into the next recompute,
	// or the view would depend on arrival order: keep the import object's
	// own updated_at, and whether started_at was derived from the phases.
	BaseUpdatedAt  time.Time `json:"base_updated_at"`
	StartedDerived bool      `json:"started_derived,omitempty"`
	// Percent is the highest progress shown: an import object arriving
	// later (queued after started's progress) does not take it back.
	Percent float64 `json:"percent,omitempty"`
	// Children are the ids of the imports that name this one their parent,
	// kept apart from the import object, which every fold replaces.
	Children []string `json:"children,omitempty"`
}

type phaseDoc struct {
	imports.PhaseSums
	// Seen is a bitmap of the batch numbers already counted: a redelivered
	// progress event finds its bit set and changes nothing.
	Seen []byte `json:"seen"`
}

func (p *phaseDoc) seen(b int) bool {
	i := b / 8
	return i < len(p.Seen) && p.Seen[i]&(1<<(b%8)) != 0
}

func (p *phaseDoc) mark(b int) {
	i := b / 8
	for len(p.Seen) <= i {
		p.Seen = append(p.Seen, 0)
	}
	p.Seen[i] |= 1 << (b % 8)
}

type completedDoc struct {
	BatchesTotal int       `json:"batches_total"`
	CompletedAt  time.Time `json:"completed_at"`
}

// ImportOf decodes the import object of a stored view.
func ImportOf(v store.View) (events.Import, error) {
	var d viewDoc
	if err := json.Unmarshal(v.Doc, &d); err != nil {
		return events.Import{}, fmt.Errorf("view %s: decode: %w", v.ID, err)
	}
	d.Import.Normalize()
	return d.Import, nil
}

// Import is the view of import id: store.ErrNotFound when there is none.
func (p *Projector) Import(ctx context.Context, id string) (events.Import, error) {
	v, err := p.views.GetView(ctx, id)
	if err != nil {
		return events.Import{}, err
	}
	return ImportOf(v)
}

// ListImports returns up to limit imports of status, newest first, created
// before the import id before (all when empty). A view that no longer
// decodes is logged and left out, so one bad view cannot hide the others.
func (p *Projector) ListImports(ctx context.Context, status events.Status, before string, limit int) ([]events.Import, error) {
	views, err := p.views.ListViews(ctx, store.ViewFilter{Status: string(status), Before: before, Limit: limit})
	if err != nil {
		return nil, err
	}
	out := make([]events.Import, 0, len(views))
	for _, v := range views {
		imp, err := ImportOf(v)
		if err != nil {
			p.log.Error().Err(err).Str("import_id", v.ID).Msg("view left out of the list")
			continue
		}
		out = append(out, imp)
	}
	return out, nil
}

// change is one event reduced to what it does to a view.
type change struct {
	id, org, resource string
	rank              int // for events carrying an import object; -1 otherwise
	imp               events.Import
	progress          *events.BatchProgress
	phaseDone         *events.PhaseCompleted
	at                time.Time // event time, for a skeleton's created_at when the id is no ULID
}

// Apply folds one event into its import's view. It is idempotent and
// tolerates any order; it returns an error wrapping ErrMalformed for events
// that can never apply, and other errors (store failures) that a retry may cure.
func (p *Projector) Apply(ctx context.Context, subject string, ce events.CloudEvent) error {
	c, err := decodeChange(subject, ce)
	if err != nil {
		return err
	}
	if c == nil {
		return nil // an event the views do not show
	}
	err = p.views.UpdateView(ctx, c.id, func(cur *store.View) (*store.View, error) {
		var d viewDoc
		if cur != nil {
			if err := json.Unmarshal(cur.Doc, &d); err != nil {
				return nil, fmt.Errorf("view %s: stored document unreadable: %w", c.id, err)
			}
		} else {
			d = skeleton(c)
		}
		if d.Rank == rankTerminal || !fold(&d, c) {
			return nil, nil // terminal views never change; repeats change nothing
		}
		if d.Rank != rankTerminal {
			recompute(&d) // the terminal object is authoritative as published
		} else {
			// Its progress too, but for the floor: a terminal object built
			// without progress (before there was any) keeps what was shown.
			imports.SetProgress(&d.Import, max(d.Percent, d.Import.Progress.Percent), d.Import.UpdatedAt)
			d.Import.Normalize()
		}
		d.Percent = d.Import.Progress.Percent
		d.Import.Children = append([]string{}, d.Children...)
		return encodeView(c.id, d)
	})
	if err != nil || c.rank < 0 || c.imp.ParentImportID == "" {
		return err
	}
	return p.linkChild(ctx, c.imp)
}

func encodeView(id string, d viewDoc) (*store.View, error) {
	doc, err := json.Marshal(d)
	if err != nil {
		return nil, fmt.Errorf("view %s: encode: %w", id, err)
	}
	return &store.View{
		ID:        id,
		Org:       d.Import.OrganizationID,
		Resource:  d.Import.Resource,
		Status:    string(d.Import.Status),
		CreatedAt: d.Import.CreatedAt,
		Doc:       doc,
	}, nil
}

// MaxChildren bounds the children an import lists (its view and object
// stay small however often it is retried): the first ones.
const MaxChildren = 1000

// linkChild lists child among its parent's children, once, in id order
// (ids sort by creation: oldest first, whatever order the events came in).
// Only a parent of the child's own organization lists it: a request naming
// another organization's import is refused, and must not show there. A
// parent not in the views yet (a rebuild replays the parent's events first)
// has nobody to list it.
func (p *Projector) linkChild(ctx context.Context, child events.Import) error {
	parent := child.ParentImportID
	return p.views.UpdateView(ctx, parent, func(cur *store.View) (*store.View, error) {
		if cur == nil || cur.Org != child.OrganizationID {
			return nil, nil
		}
		var d viewDoc
		if err := json.Unmarshal(cur.Doc, &d); err != nil {
			return nil, fmt.Errorf("view %s: stored document unreadable: %w", parent, err)
		}
		i, found := slices.BinarySearch(d.Children, child.ID)
		if found || child.ID == parent || len(d.Children) >= MaxChildren {
			return nil, nil
		}
		d.Children = slices.Insert(d.Children, i, child.ID)
		d.Import.Children = append([]string{}, d.Children...)
		return encodeView(parent, d)
	})
}

func malformed(subject, format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s", ErrMalformed, subject, fmt.Sprintf(format, args...))
}

func decodeChange(subject string, ce events.CloudEvent) (*change, error) {
	org, resource, event, err := events.ParseSubject(subject)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	c := &change{org: org, resource: resource, rank: -1, at: ce.Time}
	importObject := func(rank int) (*change, error) {
		if err := json.Unmarshal(ce.Data, &c.imp); err != nil {
			return nil, malformed(subject, "data is not an import object: %v", err)
		}
		if c.imp.ID == "" {
			return nil, malformed(subject, "import object has no id")
		}
		c.id, c.rank = c.imp.ID, rank
		return c, nil
	}
	switch event {
	case events.EventRequested:
		var req events.ImportRequested
		if err := json.Unmarshal(ce.Data, &req); err != nil {
			return nil, malformed(subject, "data is not an import request: %v", err)
		}
		if req.ID == "" {
			// Intake derives the id; the queued event will carry it.
			return nil, nil
		}
		o := req.Options
		if o.OrganizationID == "" {
			o.OrganizationID = org
		}
		if o.Resource == "" {
			o.Resource = resource
		}
		if err := imports.Normalize(&o); err != nil {
			return nil, nil // intake refuses it and reports that with a terminal event
		}
		at := ce.Time
		if t, ok := imports.IDTime(o.ID); ok {
			at = t
		}
		c.imp = imports.Initial(o, at)
		c.imp.Status = events.StatusRequested
		c.imp.ExpiresAt, c.imp.Links.Upload = req.ExpiresAt, req.UploadURL
		if req.Source != nil || len(req.Inputs) > 0 || imports.FromParent(o) {
			c.imp.Status = events.StatusQueued // the file is already there, or is the parent's
			if req.Source != nil {
				c.imp.File.Name, c.imp.File.ContentType = req.Source.Name, req.Source.ContentType
			}
		}
		c.id, c.rank = o.ID, rankRequested
		return c, nil
	case events.EventQueued:
		return importObject(rankQueued)
	case events.EventStarted:
		return importObject(rankStarted)
	case events.EventCompleted, events.EventFailed, events.EventInterrupted, events.EventTimedOut, events.EventExpired:
		c, err := importObject(rankTerminal)
		if err == nil && !c.imp.Status.Terminal() {
			c.imp.Status = events.Status(event) // the subject is the publisher's word on the outcome
		}
		return c, err
	case events.EventProgress:
		var bp events.BatchProgress
		if err := json.Unmarshal(ce.Data, &bp); err != nil {
			return nil, malformed(subject, "data is not batch progress: %v", err)
		}
		if bp.ImportID == "" {
			bp.ImportID = ce.Subject
		}
		if bp.ImportID == "" || bp.Phase == "" {
			return nil, malformed(subject, "progress without import id or phase")
		}
		if bp.Batch < 0 || bp.Batch >= maxBatch {
			return nil, malformed(subject, "batch %d out of range [0, %d)", bp.Batch, maxBatch)
		}
		c.id, c.progress = bp.ImportID, &bp
		return c, nil
	case events.EventPhaseCompleted:
		var pc events.PhaseCompleted
		if err := json.Unmarshal(ce.Data, &pc); err != nil {
			return nil, malformed(subject, "data is not phase_completed: %v", err)
		}
		if pc.ImportID == "" {
			pc.ImportID = ce.Subject
		}
		if pc.ImportID == "" || pc.Phase == "" {
			return nil, malformed(subject, "phase_completed without import id or phase")
		}
		c.id, c.phaseDone = pc.ImportID, &pc
		return c, nil
	}
	return nil, nil // an event added later: nothing of the view depends on it yet
}

// skeleton is the view of an import whose import object has not arrived yet
// (progress overtook queued): what the subject and id tell, and the options'
// defaults until the object brings the real ones, so that every read is an
// import object as spec §1 has it (mode, format, action… among their values).
func skeleton(c *change) viewDoc {
	created, ok := imports.IDTime(c.id)
	if !ok {
		created = c.at.UTC()
	}
	opts := events.Options{ID: c.id, OrganizationID: c.org, Resource: c.resource}
	_ = imports.Normalize(&opts) // the subject's tokens are valid: nothing to refuse
	imp := events.Import{
		Options:   opts,
		Status:    events.StatusProcessing,
		CreatedAt: created,
		UpdatedAt: created,
		Links:     imports.Links(opts),
	}
	imp.Normalize()
	return viewDoc{Import: imp, Rank: rankSkeleton, BaseUpdatedAt: created}
}

// fold adds c to d and reports whether anything changed.
func fold(d *viewDoc, c *change) bool {
	switch {
	case c.rank == rankTerminal:
		d.Import, d.Rank = c.imp, rankTerminal
		d.Phases, d.Completed = nil, nil // never recomputed again
		return true
	case c.rank >= 0:
		if c.rank < d.Rank || (c.rank == d.Rank && c.imp.UpdatedAt.Before(d.BaseUpdatedAt)) {
			return false
		}
		d.Import, d.Rank = c.imp, c.rank
		d.BaseUpdatedAt, d.StartedDerived = c.imp.UpdatedAt, false
		return true
	case c.progress != nil:
		bp := c.progress
		if d.Phases == nil {
			d.Phases = map[string]*phaseDoc{}
		}
		ph := d.Phases[bp.Phase]
		if ph == nil {
			ph = &phaseDoc{}
			d.Phases[bp.Phase] = ph
		}
		if ph.seen(bp.Batch) {
			return false
		}
		ph.mark(bp.Batch)
		ph.Add(*bp)
		return true
	case c.phaseDone != nil:
		if _, ok := d.Completed[c.phaseDone.Phase]; ok {
			return false
		}
		if d.Completed == nil {
			d.Completed = map[string]completedDoc{}
		}
		d.Completed[c.phaseDone.Phase] = completedDoc{BatchesTotal: c.phaseDone.BatchesTotal, CompletedAt: c.phaseDone.CompletedAt.UTC()}
		return true
	}
	return false
}

// recompute derives the phases, stats, status and times of a non-terminal
// view from its import object and sums, the way cleanup builds the final
// object (imports.ApplySums), so the live view and the completion agree.
func recompute(d *viewDoc) {
	imp := &d.Import
	sums := make(map[string]*imports.PhaseSums, len(d.Phases))
	for name, ph := range d.Phases {
		s := ph.PhaseSums
		sums[name] = &s
	}
	done := make(map[string]bool, len(d.Completed))
	for name := range d.Completed {
		done[name] = true
	}
	imports.ApplySums(imp, sums, done)
	latest := d.BaseUpdatedAt
	committed := latest // the last batch committed, of a running phase too
	for _, ph := range d.Phases {
		if ph.CompletedAt != nil && ph.CompletedAt.After(committed) {
			committed = *ph.CompletedAt
		}
	}
	var earliest *time.Time
	for i := range imp.Phases {
		ps := &imp.Phases[i]
		if pc, ok := d.Completed[ps.Name]; ok {
			// The phase_completed event knows the total even when the
			// phase had no batch (or its last progress is still in flight).
			if pc.BatchesTotal > ps.BatchesTotal {
				ps.BatchesTotal = pc.BatchesTotal
			}
			if ps.CompletedAt == nil && !pc.CompletedAt.IsZero() {
				t := pc.CompletedAt
				ps.CompletedAt = &t
			}
		}
		if ps.StartedAt != nil && (earliest == nil || ps.StartedAt.Before(*earliest)) {
			earliest = ps.StartedAt
		}
		if ps.CompletedAt != nil && ps.CompletedAt.After(latest) {
			latest = *ps.CompletedAt
		}
	}
	imp.UpdatedAt = latest
	if d.Rank >= rankStarted || len(d.Phases) > 0 || len(d.Completed) > 0 {
		imp.Status = events.StatusProcessing
		if (imp.StartedAt == nil || d.StartedDerived) && earliest != nil {
			t := *earliest
			imp.StartedAt, d.StartedDerived = &t, true
		}
	}
	imports.SetProgress(imp, d.Percent, committed)
	imp.Normalize()
}

// Handler applies each event it is handed (the router gives it the events
// of the shared durable consumer Durable): nil once applied, and for a
// malformed event, which is logged and acked as it would fail forever; an
// error, for a redelivery, when the store fails for good. A store that is
// down or restarting is waited out meanwhile (the router keeps the message
// alive): spending deliveries on an outage would drop events, a terminal
// one among them.
func (p *Projector) Handler() message.NoPublishHandlerFunc {
	return func(msg *message.Message) error {
		ctx := msg.Context()
		subject := msg.Metadata.Get(topology.MetaSubject)
		err := faults.DefaultBackoff.WaitOut(ctx, func() error { return p.applyBody(ctx, subject, msg.Payload) },
			func(err error, attempt int, wait time.Duration) {
				p.log.Warn().Err(err).Int("attempt", attempt).Dur("retry_in", wait).
					Msg("projector: transient fault; waiting it out, the delivery is kept")
			})
		switch {
		case err == nil:
			return nil
		case errors.Is(err, ErrMalformed):
			p.log.Error().Err(err).Str("subject", subject).Msg("projector: dropping event that can never apply")
			return nil
		default:
			p.log.Warn().Err(err).Str("subject", subject).Msg("projector: apply failed; will be redelivered")
			return err
		}
	}
}

// applyBody decodes a message body and applies it; an undecodable body is
// malformed like a bad subject.
func (p *Projector) applyBody(ctx context.Context, subject string, body []byte) error {
	ce, err := events.Decode(body)
	if err != nil {
		return fmt.Errorf("%w: %s: %v", ErrMalformed, subject, err)
	}
	return p.Apply(ctx, subject, ce)
}

// Rebuild replaces every view by replaying INLET_EVENTS from its first
// message up to the last one present when Rebuild starts, through an
// ordered ephemeral consumer (no state left on the server). Events published
// meanwhile are the live projector's: it applies them, and as views do not
// depend on order, both converge.
func (p *Projector) Rebuild(ctx context.Context, js jetstream.JetStream, blobs blob.Store) error {
	stream, err := js.Stream(ctx, topology.EventsStream)
	var info *jetstream.StreamInfo
	if err == nil {
		info, err = stream.Info(ctx)
	}
	if err != nil {
		return fmt.Errorf("projector rebuild: stream %s: %w", topology.EventsStream, err)
	}
	if err := p.views.ResetViews(ctx); err != nil {
		return fmt.Errorf("projector rebuild: reset views: %w", err)
	}
	last := info.State.LastSeq
	if info.State.Msgs == 0 {
		return p.recoverFromBlobs(ctx, blobs)
	}
	cons, err := stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{events.AllSubjects}, DeliverPolicy: jetstream.DeliverAllPolicy})
	var it jetstream.MessagesContext
	if err == nil {
		it, err = cons.Messages()
	}
	if err != nil {
		return fmt.Errorf("projector rebuild: ordered consumer on %s: %w", topology.EventsStream, err)
	}
	defer it.Stop()
	applied := 0
	for {
		m, err := it.Next(jetstream.NextContext(ctx))
		if err != nil {
			return fmt.Errorf("projector rebuild: after %d events: %w", applied, err)
		}
		md, err := m.Metadata()
		if err != nil {
			return fmt.Errorf("projector rebuild: message metadata: %w", err)
		}
		if md.Sequence.Stream > last {
			break
		}
		err = p.applyBody(ctx, m.Subject(), m.Data())
		switch {
		case err == nil:
			applied++
		case errors.Is(err, ErrMalformed):
			p.log.Error().Err(err).Uint64("seq", md.Sequence.Stream).Msg("projector rebuild: skipping event that can never apply")
		default:
			return fmt.Errorf("projector rebuild: event %d on %s: %w", md.Sequence.Stream, m.Subject(), err)
		}
		if md.Sequence.Stream >= last {
			break
		}
	}
	p.log.Info().Int("events", applied).Uint64("last_seq", last).Msg("projector rebuild: events replayed")
	return p.recoverFromBlobs(ctx, blobs)
}

// recoverFromBlobs gives a view to every import the stream no longer holds
// (events are kept INLET_EVENTS' max age, 7 days): its final object, or the
// object intake wrote, or the request waiting for its file, published to the
// views as the event that carries it would have been.
func (p *Projector) recoverFromBlobs(ctx context.Context, blobs blob.Store) error {
	if blobs == nil {
		return nil
	}
	ids, err := blob.Children(ctx, blobs, imports.Root)
	if err != nil {
		return fmt.Errorf("projector rebuild: list imports: %w", err)
	}
	recovered := 0
	for _, id := range ids {
		if _, err := p.views.GetView(ctx, id); err == nil {
			continue
		} else if !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("projector rebuild: view %s: %w", id, err)
		}
		subject, ce, ok, err := storedEvent(ctx, blobs, id)
		if err != nil {
			return fmt.Errorf("projector rebuild: import %s: %w", id, err)
		}
		if !ok {
			continue
		}
		if err := p.Apply(ctx, subject, ce); err != nil {
			return fmt.Errorf("projector rebuild: import %s: %w", id, err)
		}
		recovered++
	}
	p.log.Info().Int("imports", len(ids)).Int("recovered", recovered).Msg("projector rebuild: imports the stream no longer held recovered from the blob store")
	return nil
}

// storedEvent is the event that carries what the blob store holds of import
// id: its terminal object, else its import object, else its stored request.
func storedEvent(ctx context.Context, blobs blob.Store, id string) (string, events.CloudEvent, bool, error) {
	read := func(key string, v any) (bool, error) { return blob.GetJSON(ctx, blobs, key, v) }
	var imp events.Import
	event := ""
	if ok, err := read(imports.TerminalKey(id), &imp); err != nil {
		return "", events.CloudEvent{}, false, err
	} else if ok {
		event = events.TerminalEvent(imp.Status)
	} else if ok, err := read(imports.ImportKey(id), &imp); err != nil {
		return "", events.CloudEvent{}, false, err
	} else if ok {
		event = events.EventStarted
	}
	if event != "" {
		ce, err := events.New(id+":recovered", "inlet/projector", event, id, imp)
		ce.Time = imp.UpdatedAt
		return events.Subject(imp.OrganizationID, imp.Resource, event), ce, err == nil, err
	}
	var req events.ImportRequested
	if ok, err := read(imports.RequestKey(id), &req); err != nil || !ok {
		return "", events.CloudEvent{}, false, err
	}
	req.ID = id
	ce, err := events.New(id+":recovered", "inlet/projector", events.EventRequested, id, req)
	ce.Time, _ = imports.IDTime(id)
	return events.Subject(req.OrganizationID, req.Resource, events.EventRequested), ce, err == nil, err
}
