// Package gateway is the write side of the HTTP API (spec §6): it takes an
// import request with its file, stores the file in the blob store as it
// streams in, and publishes the import-requested event the pipeline starts
// from. What it keeps lives in the blob store: the request of an import that
// waits for its file (upload.go) and Idempotency-Key records (idempotency.go).
//
// Three ways to create an import:
//   - multipart/form-data with a file part, or JSON with inline inputs: the
//     file is stored and the import queued at once. With upload_mode sync the
//     file is prevalidated inside the request first (sync.go).
//   - JSON options alone: the import is "requested" with links.upload, a
//     presigned PUT URL (S3) or PUT /v1/imports/{id}/upload (local store);
//     the file's arrival starts it (package uploads).
package gateway

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/inlet-dev/inlet/events"
	"github.com/inlet-dev/inlet/internal/blob"
	"github.com/inlet-dev/inlet/internal/decode"
	"github.com/inlet-dev/inlet/internal/httpapi"
	"github.com/inlet-dev/inlet/internal/imports"
	"github.com/inlet-dev/inlet/internal/resources"
)

// Publisher publishes a CloudEvent on a public subject (*broker.Broker is one).
type Publisher interface {
	PublishEvent(ctx context.Context, subject string, ce events.CloudEvent) error
}

// Views are the imports as reads show them (*projector.Projector is one,
// wired by the composition root).
type Views interface {
	// Import is import id as reads show it; store.ErrNotFound when unknown.
	Import(ctx context.Context, id string) (events.Import, error)
	// Apply folds an event into the views: idempotent, in any order.
	Apply(ctx context.Context, subject string, ce events.CloudEvent) error
}

// Registry finds a resource type by name (*resources.Registry is one).
type Registry interface {
	Get(name string) (*resources.Resource, bool)
}

// Defaults of the Config limits.
const (
	// DefaultMaxUpload bounds a request body when Config.MaxUpload is 0.
	DefaultMaxUpload = 1 << 30
	// DefaultSyncMaxBytes bounds the file of an upload_mode sync request
	// when Config.SyncMaxBytes is 0 (INLET_SYNC_MAX_BYTES).
	DefaultSyncMaxBytes = 10 << 20
	// DefaultUploadTTL is how long an import created without its file waits
	// for it when Config.UploadTTL is 0 (INLET_UPLOAD_TTL).
	DefaultUploadTTL = 24 * time.Hour
	// MaxPresignTTL is the longest an S3 presigned URL can live; a longer
	// UploadTTL is cut to it on a store that presigns.
	MaxPresignTTL = 7 * 24 * time.Hour
)

// Source is the CloudEvents source of the events the gateway publishes.
const Source = "/inlet/gateway"

// Config wires the gateway.
type Config struct {
	Blobs     blob.Store
	Publisher Publisher
	Registry  Registry
	Log       zerolog.Logger
	// Now is the clock (tests pin it); nil is time.Now.
	Now func() time.Time
	// MaxUpload bounds the file (or inline inputs) of one request in bytes.
	MaxUpload int64
	// SyncMaxBytes bounds the file of an upload_mode sync request: larger
	// ones are refused with 413 sync_too_large (use async).
	SyncMaxBytes int64
	// UploadTTL is how long an import created from options alone waits for
	// its file (expires_at, and the life of the presigned URL).
	UploadTTL time.Duration
	// RevertWindow is how long after its creation an import can be
	// reverted (0: for ever).
	RevertWindow time.Duration
	// Views, when set, are the imports as reads show them. A repeated
	// Idempotency-Key answers with the import's current object (without
	// views, or before they have the import, with the stored create
	// response), and every event the gateway publishes goes into them at
	// once, so that a read right after a create's 201 finds the import
	// instead of racing the projector.
	Views Views
	// Ready lists /readyz checks; nil checks the blob store.
	Ready []httpapi.Check
}

// Gateway serves the write routes. As an http.Handler it is the gateway
// process's whole server (routes plus httpapi.MountCommon's); Mount puts only
// the routes on a shared mux (the all-in-one server).
type Gateway struct {
	cfg    Config
	mux    *http.ServeMux
	routes http.Handler // mux, with JSON answers for what no route takes
}

// New returns the gateway.
func New(cfg Config) *Gateway {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.MaxUpload <= 0 {
		cfg.MaxUpload = DefaultMaxUpload
	}
	if cfg.SyncMaxBytes <= 0 {
		cfg.SyncMaxBytes = DefaultSyncMaxBytes
	}
	if cfg.UploadTTL <= 0 {
		cfg.UploadTTL = DefaultUploadTTL
	}
	if _, ok := cfg.Blobs.(presigner); ok && cfg.UploadTTL > MaxPresignTTL {
		cfg.UploadTTL = MaxPresignTTL
	}
	if cfg.Ready == nil {
		cfg.Ready = []httpapi.Check{{Name: "blob", Fn: cfg.Blobs.Ping}}
	}
	g := &Gateway{cfg: cfg, mux: http.NewServeMux()}
	g.Mount(g.mux)
	httpapi.MountCommon(g.mux, cfg.Ready...)
	g.routes = httpapi.Routes(g.mux)
	return g
}

// ServeHTTP serves the gateway process's routes.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) { g.routes.ServeHTTP(w, r) }

// Mount registers the write routes on r.
func (g *Gateway) Mount(r httpapi.Router) {
	r.HandleFunc("POST /v1/imports", g.create)
	r.HandleFunc("PUT /v1/imports/{id}/upload", g.upload)
	r.HandleFunc("POST /v1/imports/{id}/interrupt", g.interrupt)
	r.HandleFunc("POST /v1/imports/{id}/revert", g.revert)
	r.HandleFunc("POST /v1/imports/{id}/retry", g.retry)
}

// apiError is a client-facing failure of a create request.
type apiError struct {
	status  int
	code    string
	message string
	details map[string]any
}

func (e *apiError) Error() string { return e.code + ": " + e.message }

func fieldError(status int, code, field, message string) *apiError {
	return &apiError{status: status, code: code, message: field + ": " + message, details: map[string]any{"field": field}}
}

func invalidOption(field, message string) *apiError {
	return fieldError(http.StatusUnprocessableEntity, "invalid_option", field, message)
}

func malformedBody(message string) *apiError {
	return &apiError{status: http.StatusBadRequest, code: "malformed_body", message: message}
}

// upload is the stored file of a request.
type upload struct {
	key, name, contentType string
	size                   int64
	sum                    string
}

// createInput is a parsed create request.
type createInput struct {
	opts events.Options
	up   *upload
	// optionsOnly: a JSON body without inputs, which asks for an upload link.
	optionsOnly bool
	// columns and unmapped: the mapping a sync prevalidation used.
	columns  map[string]string
	unmapped []events.UnmappedHeader
}

func (g *Gateway) create(w http.ResponseWriter, r *http.Request) {
	now := g.cfg.Now().UTC()
	id := imports.NewID(now)
	r.Body = http.MaxBytesReader(w, r.Body, g.cfg.MaxUpload+1<<20) // options ride along the file
	in, err := g.readCreate(r, id)
	var res *resources.Resource
	if err == nil {
		res, err = g.validate(r, in)
	}
	var idem *idemState
	if err == nil {
		in.opts.ID, in.opts.CreatedBy = id, httpapi.Principal(r)
		idem, err = g.idempotency(r, in)
		if idem != nil && in.up != nil {
			idem.fileKey = in.up.key
		}
	}
	if err == nil && idem != nil && idem.found != nil {
		g.discard(r, in.up) // a repeat creates nothing
		g.repeat(w, r, idem.found)
		return
	}
	if err == nil {
		// After the repeat: a deadline that has passed since the first
		// request does not refuse its repeat.
		if de := imports.CheckDeadline(in.opts, now); de != nil {
			err = invalidOption(de.Field, de.Message)
		}
	}
	var pv *Prevalidation
	if err == nil && in.opts.UploadMode == events.UploadSync {
		pv, err = g.prevalidate(r.Context(), in, res)
	}
	if err != nil {
		// The file landed before the request turned out bad: nothing will
		// ever read it.
		g.discard(r, in.up)
		g.fail(w, r, err)
		return
	}
	if in.optionsOnly {
		g.createRequested(w, r, in.opts, idem, now)
		return
	}
	up := in.up
	req := events.ImportRequested{Options: in.opts, Source: &events.Source{Key: up.key, Name: up.name, ContentType: up.contentType}}
	ce, err := events.New("req:"+id, Source, events.EventRequested, id, req)
	if err != nil {
		g.fail(w, r, err)
		return
	}
	ce.Time = now
	imp := imports.Initial(in.opts, now)
	imp.File = events.File{Name: up.name, Size: up.size, ContentType: up.contentType, Checksum: "sha256:" + up.sum}
	imp.File.Columns, imp.File.UnmappedHeaders = in.columns, in.unmapped
	withUploadLinks(&imp)
	g.finishCreate(w, r, idem, published{subject: events.Subject(in.opts.OrganizationID, in.opts.Resource, events.EventRequested), event: ce},
		createResponse{Import: imp, Prevalidation: pv})
}

// createResponse is the body of a create: the import object, plus the
// prevalidation result of an upload_mode sync request.
type createResponse struct {
	events.Import
	Prevalidation *Prevalidation `json:"prevalidation,omitempty"`
}

// MarshalJSON writes the import object with prevalidation beside its fields
// (the embedded import's own MarshalJSON would otherwise write it alone).
func (r createResponse) MarshalJSON() ([]byte, error) {
	imp, err := json.Marshal(r.Import)
	if err != nil || r.Prevalidation == nil {
		return imp, err
	}
	pv, err := json.Marshal(r.Prevalidation)
	if err != nil {
		return nil, err
	}
	out := append(imp[:len(imp)-1], `,"prevalidation":`...)
	return append(append(out, pv...), '}'), nil
}

// published is an event to publish (and, under an Idempotency-Key, to
// publish again on a repeat).
type published struct {
	subject string
	event   events.CloudEvent
}

// finishCreate records the Idempotency-Key (if any), publishes the request
// and answers 201. The record is written first: a repeat after a failed
// publish publishes the same event again (same id, so at most one lands).
func (g *Gateway) finishCreate(w http.ResponseWriter, r *http.Request, idem *idemState, p published, resp createResponse) {
	id := resp.ID
	if idem != nil {
		winner, err := g.remember(r.Context(), idem, p, resp)
		if err == nil && winner != nil {
			// Another request with this key got there first: this one is its repeat.
			if idem.fileKey != "" {
				_ = g.cfg.Blobs.Delete(context.WithoutCancel(r.Context()), idem.fileKey)
			}
			g.repeat(w, r, winner)
			return
		}
		if err != nil {
			if idem.fileKey != "" {
				_ = g.cfg.Blobs.Delete(context.WithoutCancel(r.Context()), idem.fileKey)
			}
			g.fail(w, r, err)
			return
		}
	}
	if err := g.cfg.Publisher.PublishEvent(r.Context(), p.subject, p.event); err != nil {
		// The file stays: if the publish did land, the pipeline needs it.
		g.cfg.Log.Error().Err(err).Str("import", id).Msg("gateway: publish import-requested failed")
		httpapi.WriteError(w, http.StatusServiceUnavailable, "publish_failed",
			"the import request could not be handed to the pipeline: "+err.Error(), map[string]any{"id": id})
		return
	}
	if g.cfg.Views != nil {
		if err := g.cfg.Views.Apply(r.Context(), p.subject, p.event); err != nil {
			// The import exists; the projector will show it shortly.
			g.cfg.Log.Warn().Err(err).Str("import", id).Msg("gateway: could not record the request in the views")
		}
	}
	w.Header().Set("Location", resp.Links.Self)
	httpapi.WriteJSON(w, http.StatusCreated, resp)
}

// withUploadLinks adds the links to the import's file converted (served by
// the projector's source routes).
func withUploadLinks(imp *events.Import) {
	imp.Links.UploadCSV = imp.Links.Self + "/upload.csv"
	imp.Links.UploadJSON = imp.Links.Self + "/upload.json"
}

// discard removes the stored file of a request that will not go on.
func (g *Gateway) discard(r *http.Request, up *upload) {
	if up == nil {
		return
	}
	if err := g.cfg.Blobs.Delete(context.WithoutCancel(r.Context()), up.key); err != nil {
		g.cfg.Log.Warn().Err(err).Str("key", up.key).Msg("gateway: could not remove the file of a refused request")
	}
}

func (g *Gateway) readCreate(r *http.Request, id string) (*createInput, error) {
	in := &createInput{}
	ct, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch {
	case err != nil:
		err = &apiError{status: http.StatusUnsupportedMediaType, code: "unsupported_media_type",
			message: "Content-Type must be multipart/form-data or application/json"}
	case ct == "multipart/form-data":
		in.opts, in.up, err = g.readMultipart(r, params["boundary"], id)
	case ct == "application/json":
		in.opts, in.up, in.optionsOnly, err = g.readJSON(r, id)
	default:
		err = &apiError{status: http.StatusUnsupportedMediaType, code: "unsupported_media_type",
			message: fmt.Sprintf("Content-Type %q: use multipart/form-data (a file) or application/json (inline inputs, or options alone for an upload link)", ct)}
	}
	return in, err
}

func (g *Gateway) fail(w http.ResponseWriter, r *http.Request, err error) {
	var ae *apiError
	if errors.As(err, &ae) {
		httpapi.WriteError(w, ae.status, ae.code, ae.message, ae.details)
		return
	}
	g.cfg.Log.Error().Err(err).Msg("gateway: create import failed")
	httpapi.WriteError(w, http.StatusInternalServerError, "internal", err.Error(), nil)
}

// validate applies defaults and checks the options and the file's presence.
func (g *Gateway) validate(r *http.Request, in *createInput) (*resources.Resource, error) {
	opts, up := &in.opts, in.up
	org, foreign := httpapi.ResolveOrg(r, opts.OrganizationID)
	if foreign != nil {
		// An API key may create imports in its own organization only.
		return nil, &apiError{status: http.StatusForbidden, code: httpapi.CodeForbiddenOrg, message: foreign.Error(), details: foreign.Details()}
	}
	opts.OrganizationID = org
	if err := imports.Normalize(opts); err != nil {
		var oe *imports.OptionError
		if errors.As(err, &oe) {
			return nil, invalidOption(oe.Field, oe.Message)
		}
		return nil, invalidOption("options", err.Error())
	}
	if opts.Action == events.ActionRevert {
		return nil, invalidOption("action", "a revert has no file: POST /v1/imports/{id}/revert reverts import {id}")
	}
	res, ok := g.cfg.Registry.Get(opts.Resource)
	if !ok {
		return nil, fieldError(http.StatusUnprocessableEntity, "unknown_resource", "resource",
			fmt.Sprintf("%q is not a resource of the registry (GET /v1/resources lists them)", opts.Resource))
	}
	switch {
	case in.optionsOnly && opts.UploadMode == events.UploadSync:
		return nil, invalidOption("upload_mode", "sync prevalidates the file inside the create request: send the file with it "+
			"(multipart/form-data with a file part, or JSON with inputs), or use async to upload it later")
	case in.optionsOnly:
		return res, nil
	case up == nil:
		return nil, fieldError(http.StatusUnprocessableEntity, "missing_file", "file",
			"add a file part to the multipart/form-data request, or send JSON options alone (application/json) "+
				"to get an upload link (links.upload) for the file")
	case up.size == 0:
		return nil, fieldError(http.StatusUnprocessableEntity, "empty_file", "file", "the file is empty")
	case opts.UploadMode == events.UploadSync && up.size > g.cfg.SyncMaxBytes:
		return nil, g.syncTooLarge()
	}
	return res, nil
}

func (g *Gateway) syncTooLarge() *apiError {
	return &apiError{status: http.StatusRequestEntityTooLarge, code: "sync_too_large",
		message: fmt.Sprintf("upload_mode sync prevalidates files of up to %d bytes inside the request; "+
			"use upload_mode async (the default) for larger files: prevalidation then runs in the pipeline", g.cfg.SyncMaxBytes),
		details: map[string]any{"field": "upload_mode", "max_bytes": g.cfg.SyncMaxBytes}}
}

// maxField bounds one non-file form field: options are small, and a field is
// read into memory.
const maxField = 1 << 20

func (g *Gateway) readMultipart(r *http.Request, boundary, id string) (events.Options, *upload, error) {
	var opts events.Options
	if boundary == "" {
		return opts, nil, malformedBody("multipart/form-data without a boundary parameter")
	}
	mr := multipart.NewReader(r.Body, boundary)
	fields := map[string]string{}
	var order []string
	var up *upload
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			return opts, up, bodyError(err, "multipart body")
		}
		name := part.FormName()
		switch {
		case name == "file":
			if up != nil {
				return opts, up, fieldError(http.StatusBadRequest, "malformed_body", "file", "more than one file part")
			}
			// With upload_mode sync given before the file, a file over the
			// sync limit is refused as it streams in, not after.
			up, err = g.store(r.Context(), id, part.FileName(), part.Header.Get("Content-Type"), part,
				events.UploadMode(strings.TrimSpace(fields["upload_mode"])) == events.UploadSync)
			if err != nil {
				return opts, up, err
			}
		case name == "":
			return opts, up, malformedBody("a multipart part has no form name")
		default:
			if _, dup := fields[name]; dup {
				return opts, up, fieldError(http.StatusBadRequest, "malformed_body", name, "given more than once")
			}
			b, err := io.ReadAll(io.LimitReader(part, maxField+1))
			if err != nil {
				return opts, up, bodyError(err, "form field "+name)
			}
			if len(b) > maxField {
				return opts, up, fieldError(http.StatusBadRequest, "malformed_body", name, "longer than 1 MiB")
			}
			fields[name] = string(b)
			order = append(order, name)
		}
	}
	for _, name := range order {
		if err := setOption(&opts, name, fields[name]); err != nil {
			return opts, up, err
		}
	}
	if up != nil && opts.Format == "" {
		opts.Format = decode.InferFormat(up.contentType, up.name)
	}
	return opts, up, nil
}

// setOption sets one option from its form field text.
func setOption(o *events.Options, name, v string) error {
	str := map[string]func(){
		"organization_id": func() { o.OrganizationID = v }, "mode": func() { o.Mode = events.Mode(v) },
		"name": func() { o.Name = v }, "resource": func() { o.Resource = v },
		"format": func() { o.Format = events.Format(v) }, "action": func() { o.Action = events.Action(v) },
		"duplicate_handling": func() { o.DuplicateHandling = events.DuplicateHandling(v) },
		"upload_mode":        func() { o.UploadMode = events.UploadMode(v) },
		"reference":          func() { o.Reference = v }, "reference_origin": func() { o.ReferenceOrigin = v },
		"sheet": func() { o.Sheet = v }, "delimiter": func() { o.Delimiter = v },
	}
	if set, ok := str[name]; ok {
		set()
		return nil
	}
	boolean := func(p *bool) error {
		if strings.TrimSpace(v) == "" {
			*p = false
			return nil
		}
		b, ok := resources.ParseBool(v)
		if !ok {
			return invalidOption(name, fmt.Sprintf("%q is not a boolean (%s)", v, resources.BooleanSpellings))
		}
		*p = b
		return nil
	}
	switch name {
	case "skip_errors":
		return boolean(&o.SkipErrors)
	case "dry_run":
		return boolean(&o.DryRun)
	case "error_threshold":
		f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil {
			return invalidOption(name, fmt.Sprintf("%q is not a number", v))
		}
		o.ErrorThreshold = &f
	case "deadline":
		d, err := time.Parse(time.RFC3339, strings.TrimSpace(v))
		if err != nil {
			return invalidOption(name, fmt.Sprintf("%q is not an RFC 3339 time", v))
		}
		o.Deadline = &d
	case "parent_resource_id":
		if v != "" {
			o.ParentResourceID = &v
		}
	case "column_mapping":
		if err := json.Unmarshal([]byte(v), &o.ColumnMapping); err != nil {
			return invalidOption(name, "must be a JSON object of field name → column header: "+err.Error())
		}
	case "metadata":
		if err := json.Unmarshal([]byte(v), &o.Metadata); err != nil {
			return invalidOption(name, "must be a JSON object: "+err.Error())
		}
	case "id", "created_by":
		return serverAssigned(name)
	default:
		return fieldError(http.StatusUnprocessableEntity, "unknown_option", name, "is not an import option")
	}
	return nil
}

func serverAssigned(name string) error {
	return invalidOption(name, "is assigned by the server (a client chooses the id by publishing an import-requested event)")
}

// bodyError classifies a failure to read the request body.
func bodyError(err error, what string) error {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) || errors.Is(err, errTooLarge) {
		return &apiError{status: http.StatusRequestEntityTooLarge, code: "file_too_large", message: what + ": the request exceeds the upload limit"}
	}
	return malformedBody(fmt.Sprintf("%s: %v", what, err))
}

var errTooLarge = errors.New("upload exceeds the size limit")

// meter hashes and counts what passes through and stops at the size limit.
// It remembers its own error so a failed Put can be blamed on the client
// (body) or on the blob store.
type meter struct {
	r     io.Reader
	h     hash.Hash
	n     int64
	limit int64
	err   error
}

func (m *meter) Read(p []byte) (int, error) {
	n, err := m.r.Read(p)
	m.h.Write(p[:n])
	m.n += int64(n)
	if m.n > m.limit {
		m.err = errTooLarge
		return n, errTooLarge
	}
	if err != nil && err != io.EOF {
		m.err = err
	}
	return n, err
}

// store streams r into the blob store under the import's source key; sync
// bounds it by the sync limit instead of the upload limit.
func (g *Gateway) store(ctx context.Context, id, fileName, contentType string, r io.Reader, sync bool) (*upload, error) {
	name := sanitize(fileName)
	key := imports.SourceKey(id, name)
	m := &meter{r: r, h: sha256.New(), limit: g.cfg.MaxUpload}
	if sync && g.cfg.SyncMaxBytes < m.limit {
		m.limit = g.cfg.SyncMaxBytes
	}
	if err := g.cfg.Blobs.Put(ctx, key, m, -1); err != nil {
		if errors.Is(m.err, errTooLarge) && sync && m.limit == g.cfg.SyncMaxBytes {
			return nil, g.syncTooLarge()
		}
		if m.err != nil {
			return nil, bodyError(m.err, "file")
		}
		return nil, fmt.Errorf("store upload at %s: %w", key, err)
	}
	display := path.Base(strings.ReplaceAll(fileName, `\`, "/"))
	if display == "." || display == "/" {
		display = name
	}
	return &upload{key: key, name: display, contentType: contentType, size: m.n, sum: hex.EncodeToString(m.h.Sum(nil))}, nil
}

// sanitize turns a client's file name into one safe blob key segment.
func sanitize(name string) string {
	name = path.Base(strings.ReplaceAll(name, `\`, "/"))
	var b strings.Builder
	for _, r := range name {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '-', r == '_':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	s := strings.TrimLeft(b.String(), ".")
	if len(s) > 128 {
		s = s[len(s)-128:] // keep the extension
	}
	if s == "" {
		s = "upload"
	}
	return s
}

// jsonRequest is the application/json body: options plus inline inputs.
type jsonRequest struct {
	events.Options
	Inputs *[]json.RawMessage `json:"inputs"`
}

func (g *Gateway) readJSON(r *http.Request, id string) (events.Options, *upload, bool, error) {
	opts, up, err := g.readJSONBody(r, id)
	return opts, up, err == nil && up == nil, err
}

func (g *Gateway) readJSONBody(r *http.Request, id string) (events.Options, *upload, error) {
	var req jsonRequest
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		var te *json.UnmarshalTypeError
		var mbe *http.MaxBytesError
		switch {
		case errors.As(err, &mbe):
			return req.Options, nil, bodyError(err, "JSON body")
		case errors.As(err, &te) && te.Field != "":
			// Options is embedded: its Go name leads the path.
			return req.Options, nil, invalidOption(strings.TrimPrefix(te.Field, "Options."), fmt.Sprintf("must be %s, not a JSON %s", jsonType(te.Type.Kind().String()), te.Value))
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			f := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
			return req.Options, nil, fieldError(http.StatusUnprocessableEntity, "unknown_option", f, "is not an import option")
		}
		return req.Options, nil, malformedBody("the body is not a JSON object of import options: " + err.Error())
	}
	if dec.More() {
		return req.Options, nil, malformedBody("the body holds more than one JSON value")
	}
	if req.ID != "" {
		return req.Options, nil, serverAssigned("id")
	}
	if req.CreatedBy != "" {
		return req.Options, nil, serverAssigned("created_by")
	}
	if req.Inputs == nil {
		return req.Options, nil, nil // options alone: an upload link
	}
	switch req.Format {
	case "", "json", "jsonl":
		req.Format = "jsonl"
	default:
		return req.Options, nil, invalidOption("format", fmt.Sprintf("%q: inline inputs are JSON records (format jsonl)", req.Format))
	}
	inputs := *req.Inputs
	if len(inputs) == 0 {
		return req.Options, nil, fieldError(http.StatusUnprocessableEntity, "invalid_inputs", "inputs", "must hold at least one record")
	}
	// Inputs are in memory already (they came in the JSON body); JSONL is
	// one record per line, so each is compacted onto one.
	var buf bytes.Buffer
	for i, in := range inputs {
		t := bytes.TrimSpace(in)
		if len(t) == 0 || t[0] != '{' {
			return req.Options, nil, fieldError(http.StatusUnprocessableEntity, "invalid_inputs", fmt.Sprintf("inputs[%d]", i), "must be a JSON object (one record)")
		}
		if err := json.Compact(&buf, t); err != nil {
			return req.Options, nil, malformedBody(fmt.Sprintf("inputs[%d]: %v", i, err))
		}
		buf.WriteByte('\n')
	}
	if int64(buf.Len()) > g.cfg.MaxUpload {
		return req.Options, nil, bodyError(errTooLarge, "inputs")
	}
	up, err := g.store(r.Context(), id, "inputs.jsonl", "application/x-ndjson", &buf, false)
	return req.Options, up, err
}

func jsonType(kind string) string {
	switch kind {
	case "float64", "int", "int64":
		return "a number"
	case "bool":
		return "true or false"
	case "string":
		return "a string"
	case "map":
		return "an object"
	case "slice":
		return "an array"
	case "ptr":
		return "a value of another type"
	}
	return "a value of another type"
}
