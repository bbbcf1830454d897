package pipeline

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"path"
	"reflect"
	"strconv"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/sync/errgroup"

	"github.com/inlet-dev/inlet/events"
	"github.com/inlet-dev/inlet/internal/blob"
	"github.com/inlet-dev/inlet/internal/decode"
	"github.com/inlet-dev/inlet/internal/imports"
	"github.com/inlet-dev/inlet/internal/rows"
	"github.com/inlet-dev/inlet/internal/textlimit"
	"github.com/inlet-dev/inlet/internal/topology"
)

// SourcePhase is the first phase: it reads the import's file and splits it
// into batches.
type SourcePhase interface {
	Name() string
	// Read decodes src (the whole file, streamed) into sp, and fills what it
	// detects about the file into file.
	Read(ctx context.Context, job *Job, src io.Reader, file *events.File, sp *Splitter) error
}

// MessageInfo tells where a received message sits in its stream: the same
// message redelivered has the same sequence and timestamp.
type MessageInfo func(*message.Message) (seq uint64, published time.Time)

// RequestHandler is the watermill handler of import-requested events.
func (h *Harness) RequestHandler(p SourcePhase, info MessageInfo) message.NoPublishHandlerFunc {
	return func(msg *message.Message) error {
		log := h.Env.Log.With().Str("phase", p.Name()).Logger()
		req, err := h.decodeRequest(msg, info)
		var transient *transientError
		if errors.As(err, &transient) {
			return transient.err // the blob store will answer on a redelivery
		}
		if err != nil {
			return h.refuseRequest(msg, info, err)
		}
		if req.Format == "" && req.Source != nil {
			req.Format = decode.InferFormat(req.Source.ContentType, req.Source.Name, req.Source.Key)
		}
		// Defaults fill the import object even when the options turn out invalid.
		_ = imports.Normalize(&req.Options)
		log = log.With().Str("import_id", req.ID).Str("batch", "all").Logger()
		ctx := log.WithContext(msg.Context())
		trace.SpanFromContext(ctx).SetAttributes(attribute.String("inlet.import_id", req.ID), attribute.String("inlet.phase", p.Name()))
		return h.forImport(ctx, req.Options, log, func(ctx context.Context) error {
			return h.intake(ctx, p, req)
		})
	}
}

func (h *Harness) decodeRequest(msg *message.Message, info MessageInfo) (events.ImportRequested, error) {
	var req events.ImportRequested
	ce, err := events.Decode(msg.Payload)
	if err != nil {
		return req, err
	}
	if err := json.Unmarshal(ce.Data, &req); err != nil {
		return req, fmt.Errorf("import request body: %w", err)
	}
	subject := msg.Metadata.Get(topology.MetaSubject)
	org, resource, _, err := events.ParseSubject(subject)
	if err != nil {
		return req, err
	}
	if req.OrganizationID == "" {
		req.OrganizationID = org
	}
	if req.Resource == "" {
		req.Resource = resource
	}
	if req.ID == "" {
		seq, published := uint64(0), time.Now()
		if info != nil {
			seq, published = info(msg)
		}
		if !ce.Time.IsZero() {
			published = ce.Time
		}
		// The same request must get the same id on every delivery, and a
		// client's Nats-Msg-Id names the request across publishes.
		msgID := msg.Metadata.Get(topology.MetaMsgID)
		seed := msgID
		if seed == "" {
			seed = "seq:" + strconv.FormatUint(seq, 10)
		}
		req.ID = imports.DerivedID(published, subject+"\x00"+seed)
		if msgID != "" {
			// A Nats-Msg-Id names the request for good, not only within the
			// stream's duplicate window: remember which import it created.
			id, err := h.requestID(msg.Context(), req.OrganizationID, msgID, req.ID)
			if err != nil {
				return req, &transientError{err}
			}
			req.ID = id
		}
	}
	if req.OrganizationID != org || req.Resource != resource {
		return req, fmt.Errorf("request for %s/%s published on %s: organization and resource must match the subject",
			textlimit.Quote(req.OrganizationID), textlimit.Quote(req.Resource), subject)
	}
	if req.CreatedBy == "" {
		// Over NATS there is no API key: the publisher names itself in the
		// event's source (the gateway sets created_by to the key's id).
		req.CreatedBy = textlimit.Clip(ce.Source, imports.MaxTextOption)
	}
	return req, nil
}

// refuseRequest answers an import request that cannot be read, or whose
// body contradicts its subject: when the subject names an organization and
// a resource, a failed import under a new id is published there with the
// reason, so a publisher waiting on that subject hears why. Otherwise there
// is nobody to answer, and the request is dropped with a log line.
func (h *Harness) refuseRequest(msg *message.Message, info MessageInfo, why error) error {
	subject := msg.Metadata.Get(topology.MetaSubject)
	org, resource, _, err := events.ParseSubject(subject)
	if err != nil {
		h.Env.Log.Error().Err(why).Str("subject", subject).Msg("dropping an unreadable import request: its subject names no organization and resource to answer on")
		return nil
	}
	seq, published := uint64(0), time.Now()
	if info != nil {
		seq, published = info(msg)
	}
	seed := msg.Metadata.Get(topology.MetaMsgID)
	if seed == "" {
		seed = "seq:" + strconv.FormatUint(seq, 10)
	}
	opts := events.Options{ID: imports.DerivedID(published, subject+"\x00refused\x00"+seed), OrganizationID: org, Resource: resource}
	_ = imports.Normalize(&opts)
	log := h.Env.Log.With().Str("import_id", opts.ID).Str("subject", subject).Logger()
	log.Warn().Err(why).Msg("import request refused")
	ctx := log.WithContext(msg.Context())
	return h.waitOut(ctx, func() error {
		return h.Finish(ctx, opts, events.StatusFailed, "the import request was refused: "+why.Error())
	})
}

type transientError struct{ err error }

func (e *transientError) Error() string { return e.err.Error() }

// requestID returns the import id a client's message id already created, or
// records id for it.
func (h *Harness) requestID(ctx context.Context, org, msgID, id string) (string, error) {
	// A claim, not a look then a write: two deliveries of one request
	// racing on two replicas must agree on one import.
	var held struct {
		ImportID string `json:"import_id"`
	}
	won, err := blob.Claim(ctx, h.Env.Blobs, imports.MsgIDKey(org, msgID), map[string]string{"import_id": id}, &held)
	if err != nil || won {
		return id, err
	}
	if held.ImportID == "" {
		return "", fmt.Errorf("the record of message id %q names no import", msgID)
	}
	return held.ImportID, nil
}

func (h *Harness) intake(ctx context.Context, p SourcePhase, req events.ImportRequested) error {
	if imports.IsRetry(req.Options) {
		if err := h.retry(ctx, &req); err != nil {
			return err
		}
	}
	opts := req.Options
	if err := imports.Normalize(&opts); err != nil {
		return Fatal("invalid import options: %v", err)
	}
	if created, ok := imports.IDTime(opts.ID); ok {
		if err := imports.CheckDeadline(opts, created); err != nil {
			return Fatal("invalid import options: %v", err)
		}
	}
	job, err := h.job(opts, 0, h.Env.Log.With().Str("import_id", opts.ID).Str("phase", p.Name()).Logger())
	if err != nil {
		return err
	}
	if opts.ParentResourceID != nil && *opts.ParentResourceID != "" && job.Resource.Parent == "" {
		return Fatal("parent_resource_id: resource %s has no parent resource", opts.Resource)
	}
	revert := opts.Action == events.ActionRevert
	if !revert && req.Source == nil && len(req.Inputs) == 0 {
		// Options alone: the import waits (status requested) for its file,
		// whose arrival publishes the request again with a source.
		job.Log.Info().Msg("import requested; waiting for its file")
		return nil
	}
	if status, reason, err := h.stopStatus(ctx, opts.ID); err != nil {
		return err
	} else if status != "" {
		return h.Finish(ctx, opts, status, reason)
	}
	var src events.Source
	if revert {
		job.Options = opts
		src, err = h.revertSource(ctx, job, req)
		opts = job.Options
	} else {
		src, err = h.source(ctx, &opts, req)
	}
	if err != nil {
		return err
	}
	job.Options = opts
	imp, err := h.begin(ctx, job, src)
	if err != nil {
		return err
	}
	if n, err := h.committedBatches(ctx, opts.ID, p.Name()); err != nil {
		return err
	} else if n > 0 {
		// An earlier delivery read the whole file: announce what it committed.
		job.Batches = n
		return h.announce(ctx, job, p.Name(), nil)
	}
	rc, err := h.Env.Blobs.Get(ctx, src.Key)
	if err != nil {
		if errors.Is(err, blob.ErrNotFound) {
			return Fatal("the import's file %s is not in the blob store", src.Key)
		}
		return err
	}
	defer rc.Close()
	sum := sha256.New()
	sp := &Splitter{h: h, job: job, phase: p.Name()}
	defer sp.discard()
	file := imp.File
	if err := p.Read(ctx, job, io.TeeReader(rc, sum), &file, sp); err != nil {
		var fatal *FatalError
		if errors.As(err, &fatal) && !reflect.DeepEqual(file, imp.File) {
			// What the phase found before the file failed (its columns, the
			// headers no field took) goes into the failed import object:
			// Finish builds it from import.json. It depends only on the
			// file, so a redelivery writes the same.
			imp.File = file
			if perr := h.putJSON(ctx, imports.ImportKey(opts.ID), imp); perr != nil {
				return perr
			}
		}
		return err
	}
	// Hash what is left, should the reader have stopped early.
	if _, err := io.Copy(sum, rc); err != nil {
		return err
	}
	file.Checksum = "sha256:" + hex.EncodeToString(sumOf(sum))
	n, err := sp.close(ctx)
	if err != nil {
		return err
	}
	imp.File = file
	if err := h.putJSON(ctx, imports.ImportKey(opts.ID), imp); err != nil {
		return err
	}
	job.Batches = n
	return h.announce(ctx, job, p.Name(), sp.stats)
}

// committedBatches is the number of batches of a source phase when all of
// them are committed (their stats are written together at the end), else 0.
func (h *Harness) committedBatches(ctx context.Context, id, phase string) (int, error) {
	list, err := h.Env.Blobs.List(ctx, imports.StatsPrefix(id, phase))
	if err != nil || len(list) == 0 {
		return 0, err
	}
	st, err := h.readStats(ctx, id, phase, 0)
	if err != nil {
		return 0, err
	}
	if st.BatchesTotal > 0 && len(list) >= st.BatchesTotal {
		return st.BatchesTotal, nil
	}
	return 0, nil
}

// announce hands on every batch of the source phase; stats, when not nil,
// gives the stats of batch b as committed (else they are read back).
func (h *Harness) announce(ctx context.Context, job *Job, phase string, stats func(b int) *events.BatchProgress) error {
	for b := 0; b < job.Batches; b++ {
		var st *events.BatchProgress
		if stats != nil {
			st = stats(b)
		}
		if err := h.afterBatch(ctx, job, phase, b, st); err != nil {
			return err
		}
	}
	return h.afterPhaseIfDone(ctx, job, phase, func(int) bool { return true })
}

func sumOf(h hash.Hash) []byte { return h.Sum(nil) }

// source makes sure the import's file is in the blob store and returns where.
func (h *Harness) source(ctx context.Context, opts *events.Options, req events.ImportRequested) (events.Source, error) {
	switch {
	case req.Source != nil && len(req.Inputs) > 0:
		return events.Source{}, Fatal("a request has either a source or inputs, not both")
	case req.Source != nil:
		if req.Source.Key == "" {
			return events.Source{}, Fatal("source.key is required")
		}
		src := *req.Source
		if src.Name == "" {
			src.Name = path.Base(src.Key)
		}
		return src, nil
	case len(req.Inputs) > 0:
		opts.Format = "jsonl"
		key := imports.SourceKey(opts.ID, "inputs.jsonl")
		pr, pw := io.Pipe()
		go func() {
			enc := rows.NewEncoder(pw)
			for _, in := range req.Inputs {
				if err := enc.Encode(in); err != nil {
					pw.CloseWithError(err)
					return
				}
			}
			pw.CloseWithError(enc.Flush())
		}()
		if err := h.Env.Blobs.Put(ctx, key, pr, -1); err != nil {
			return events.Source{}, err
		}
		return events.Source{Key: key, Name: "inputs.jsonl", ContentType: "application/x-ndjson"}, nil
	}
	return events.Source{}, Fatal("the request has neither a source file nor inputs")
}

// begin records the import (queued, then processing) and announces both. On
// a redelivery the stored object keeps its first timestamps.
func (h *Harness) begin(ctx context.Context, job *Job, src events.Source) (events.Import, error) {
	var imp events.Import
	err := h.getJSON(ctx, imports.ImportKey(job.ID()), &imp)
	if errors.Is(err, blob.ErrNotFound) {
		imp = imports.Initial(job.Options, h.Env.now())
		imp.File = events.File{Name: src.Name, ContentType: src.ContentType}
		// The original payload, converted, is served by the read API.
		imp.Links.UploadCSV = imp.Links.Self + "/upload.csv"
		imp.Links.UploadJSON = imp.Links.Self + "/upload.json"
		if info, err := h.Env.Blobs.Stat(ctx, src.Key); err == nil {
			imp.File.Size = info.Size
		}
		if err := h.putJSON(ctx, imports.ImportKey(job.ID()), imp); err != nil {
			return imp, err
		}
	} else if err != nil {
		return imp, err
	}
	if err := h.publishEvent(ctx, job.Options, events.EventQueued, job.ID()+":queued", imp); err != nil {
		return imp, err
	}
	if imp.StartedAt == nil {
		now := h.Env.now()
		imp.StartedAt = &now
		imp.Status = events.StatusProcessing
		imp.UpdatedAt = now
		if err := h.putJSON(ctx, imports.ImportKey(job.ID()), imp); err != nil {
			return imp, err
		}
	}
	return imp, h.publishEvent(ctx, job.Options, events.EventStarted, job.ID()+":started", imp)
}

// Splitter cuts the rows of the file into batches of BatchSize file rows as
// they are read, so memory holds one row at a time.
type Splitter struct {
	header  []string
	h       *Harness
	job     *Job
	phase   string
	cur     *output
	inBatch int
	done    []*output
	// uploading reports the upload of the last batch cut, which runs while
	// the next one is read (profiled in the separate shape: the file's
	// reader sat idle while each batch crossed to the blob store).
	uploading chan error
}

// TempDir is where the source phase may spool what it cannot stream.
func (s *Splitter) TempDir() string { return s.h.Env.TempDir }

// SetHeader records the file's columns, so errors.csv can give rows back
// under the file's own header.
func (s *Splitter) SetHeader(cols []string) { s.header = cols }

// Emit passes a prevalidated row on.
func (s *Splitter) Emit(ctx context.Context, r *rows.Row) error {
	out, err := s.next(ctx)
	if err != nil {
		return err
	}
	out.stats.RowsIn++
	return out.Emit(r)
}

// Reject takes a row out with its problems.
func (s *Splitter) Reject(ctx context.Context, r *rows.Row, problems ...rows.Problem) error {
	out, err := s.next(ctx)
	if err != nil {
		return err
	}
	out.stats.RowsIn++
	return out.Reject(r, problems...)
}

func (s *Splitter) next(ctx context.Context) (*output, error) {
	if s.cur != nil && s.inBatch < s.h.Env.BatchSize {
		s.inBatch++
		return s.cur, nil
	}
	if err := s.flush(ctx); err != nil {
		return nil, err
	}
	out, err := s.h.newOutput(blobBatches{s.h}, s.job, s.phase, len(s.done))
	if err != nil {
		return nil, err
	}
	s.cur, s.inBatch = out, 1
	return out, nil
}

// flush starts the upload of the current batch, once the one before it is
// stored: one batch is read while the previous one is uploaded.
func (s *Splitter) flush(ctx context.Context) error {
	if s.cur == nil {
		return nil
	}
	if err := s.waitUpload(); err != nil {
		return err
	}
	out := s.cur
	s.done = append(s.done, out)
	s.cur = nil
	done := make(chan error, 1)
	s.uploading = done
	go func() {
		err := out.commitRows(ctx)
		out.discard()
		done <- err
	}()
	return nil
}

func (s *Splitter) waitUpload() error {
	if s.uploading == nil {
		return nil
	}
	err := <-s.uploading
	s.uploading = nil
	return err
}

// stats is the stats of batch b as committed by close.
func (s *Splitter) stats(b int) *events.BatchProgress {
	if b < 0 || b >= len(s.done) {
		return nil
	}
	return &s.done[b].stats
}

// close commits the last batch and then every batch's stats, now that the
// number of batches is known. A file without rows still has one (empty) batch.
func (s *Splitter) close(ctx context.Context) (int, error) {
	if s.cur == nil && len(s.done) == 0 {
		if _, err := s.next(ctx); err != nil {
			return 0, err
		}
	}
	if len(s.done) == 0 {
		s.cur.noSummary = true // the only batch
	}
	if err := s.flush(ctx); err != nil {
		return 0, err
	}
	if err := s.waitUpload(); err != nil {
		return 0, err
	}
	if s.header != nil {
		if err := s.h.putJSON(ctx, imports.HeaderKey(s.job.ID()), s.header); err != nil {
			return 0, err
		}
	}
	// The stats of every batch, written at once: one after another they were
	// the gap between this phase and the next (200 small PUTs, 1.6 s, at 1M rows).
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(statsAtOnce)
	for _, out := range s.done {
		out.stats.BatchesTotal = len(s.done)
		g.Go(func() error {
			if err := out.commitStats(gctx); err != nil {
				return err
			}
			out.committed()
			return nil
		})
	}
	return len(s.done), g.Wait()
}

func (s *Splitter) discard() {
	_ = s.waitUpload() // its error was returned, or the import already failed
	if s.cur != nil {
		s.cur.discard()
	}
}
