package gateway

import (
	"errors"
	"fmt"
	"net/http"
	"reflect"

	"github.com/inlet-dev/inlet/events"
	"github.com/inlet-dev/inlet/internal/httpapi"
	"github.com/inlet-dev/inlet/internal/imports"
	"github.com/inlet-dev/inlet/internal/rejects"
)

// retry starts a child import of a finished import's failed rows (POST
// /v1/imports/{id}/retry): with a file (multipart like a create, or JSON
// inputs: typically the parent's errors.csv corrected, whose underscore
// columns every import ignores) or without one, to run the failed rows again
// as they were (intake writes them from the parent's rejects). The child
// takes the parent's options but for its own (imports.RetryOptions), and is
// published as an import-requested event with parent_import_id, the same
// request a client may publish on NATS.
func (g *Gateway) retry(w http.ResponseWriter, r *http.Request) {
	now := g.cfg.Now().UTC()
	id := imports.NewID(now)
	parentID := r.PathValue("id")
	org := httpapi.Org(r, r.URL.Query().Get("organization_id"))
	parent, found, err := g.lookup(r.Context(), parentID, org)
	if err != nil {
		httpapi.WriteError(w, http.StatusServiceUnavailable, "lookup_failed", err.Error(), map[string]any{"id": parentID})
		return
	}
	if !found {
		httpapi.NotFound(w, "no import "+parentID)
		return
	}
	if perr := imports.CheckRetryParent(parent); perr != nil {
		httpapi.WriteError(w, perr.Status, perr.Code, perr.Message, map[string]any{"id": parentID, "status": parent.Status})
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, g.cfg.MaxUpload+1<<20)
	in := &createInput{}
	if r.Header.Get("Content-Type") != "" || r.ContentLength > 0 {
		in, err = g.readCreate(r, id)
	}
	if err == nil {
		err = inherited(parent.Options, in.opts)
	}
	if err == nil && in.up == nil && in.opts.UploadMode == events.UploadSync {
		err = invalidOption("upload_mode", "sync prevalidates a file sent with the request; a retry without one runs in the pipeline (async)")
	}
	if err == nil {
		in.opts = imports.RetryOptions(parent.Options, in.opts, in.up != nil)
		in.opts.ID, in.opts.CreatedBy = id, httpapi.Principal(r)
		in.optionsOnly = false
		err = g.validateRetry(r, in)
	}
	var idem *idemState
	if err == nil {
		idem, err = g.idempotency(r, in)
		if idem != nil && in.up != nil {
			idem.fileKey = in.up.key
		}
	}
	if err == nil && idem != nil && idem.found != nil {
		g.discard(r, in.up)
		g.repeat(w, r, idem.found)
		return
	}
	var pv *Prevalidation
	if err == nil && in.up != nil && in.opts.UploadMode == events.UploadSync {
		res, _ := g.cfg.Registry.Get(in.opts.Resource)
		pv, err = g.prevalidate(r.Context(), in, res)
	}
	if err != nil {
		g.discard(r, in.up)
		g.fail(w, r, err)
		return
	}
	req := events.ImportRequested{Options: in.opts}
	imp := imports.Initial(in.opts, now)
	if up := in.up; up != nil {
		req.Source = &events.Source{Key: up.key, Name: up.name, ContentType: up.contentType}
		imp.File = events.File{Name: up.name, Size: up.size, ContentType: up.contentType, Checksum: "sha256:" + up.sum}
		withUploadLinks(&imp)
	}
	ce, err := events.New("req:"+id, Source, events.EventRequested, id, req)
	if err != nil {
		g.fail(w, r, err)
		return
	}
	ce.Time = now
	g.finishCreate(w, r, idem, published{subject: events.Subject(in.opts.OrganizationID, in.opts.Resource, events.EventRequested), event: ce},
		createResponse{Import: imp, Prevalidation: pv})
}

// inherited refuses a retry option that contradicts what a retry takes from
// its parent: the rows are the parent's, run as the parent would run them.
func inherited(parent, req events.Options) error {
	want := imports.RetryOptions(parent, events.Options{}, false)
	for _, c := range []struct {
		field string
		given bool
		value any
	}{
		{"resource", req.Resource != "" && req.Resource != want.Resource, want.Resource},
		{"mode", req.Mode != "" && req.Mode != want.Mode, want.Mode},
		{"action", req.Action != "" && req.Action != want.Action, want.Action},
		{"duplicate_handling", req.DuplicateHandling != "" && req.DuplicateHandling != want.DuplicateHandling, want.DuplicateHandling},
		{"column_mapping", req.ColumnMapping != nil && !reflect.DeepEqual(req.ColumnMapping, want.ColumnMapping), want.ColumnMapping},
		{"parent_resource_id", req.ParentResourceID != nil && !reflect.DeepEqual(req.ParentResourceID, want.ParentResourceID), want.ParentResourceID},
		{"parent_import_id", req.ParentImportID != "" && req.ParentImportID != parent.ID, parent.ID},
		{"force", req.Force, false},
	} {
		if c.given {
			return invalidOption(c.field, fmt.Sprintf("a retry takes it from its parent import %s (%v): it runs the parent's rows as the parent would", parent.ID, describe(c.value)))
		}
	}
	return nil
}

func describe(v any) any {
	if p, ok := v.(*string); ok {
		if p == nil {
			return "none"
		}
		return *p
	}
	return v
}

// validateRetry checks a retry's merged options and its file, if any. A
// retry without a file reads its parent's failed rows, written by intake in
// the format their file allows.
func (g *Gateway) validateRetry(r *http.Request, in *createInput) error {
	if err := imports.Normalize(&in.opts); err != nil {
		var oe *imports.OptionError
		if errors.As(err, &oe) {
			return invalidOption(oe.Field, oe.Message)
		}
		return invalidOption("options", err.Error())
	}
	if de := imports.CheckDeadline(in.opts, g.cfg.Now()); de != nil {
		return invalidOption(de.Field, de.Message)
	}
	switch up := in.up; {
	case up == nil:
		header, err := rejects.Header(r.Context(), g.cfg.Blobs, in.opts.ParentImportID)
		if err != nil {
			return err
		}
		in.opts.Format = rejects.FailedFormat(header)
	case up.size == 0:
		return fieldError(http.StatusUnprocessableEntity, "empty_file", "file", "the file is empty")
	case in.opts.UploadMode == events.UploadSync && up.size > g.cfg.SyncMaxBytes:
		return g.syncTooLarge()
	}
	return nil
}
