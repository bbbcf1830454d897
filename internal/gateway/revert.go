package gateway

import (
	"cmp"
	"encoding/json"
	"errors"
	"io"
	"net/http"

	"github.com/inlet-dev/inlet/events"
	"github.com/inlet-dev/inlet/internal/httpapi"
	"github.com/inlet-dev/inlet/internal/imports"
)

// RevertRequest is the body of POST /v1/imports/{id}/revert; every field is
// optional (an empty body reverts the import for real, without force).
type RevertRequest = events.RevertRequest

// revert starts a child import that puts back every record import {id}
// changed (action revert, parent_import_id {id}): the same import-requested
// event a client may publish on NATS. The parent must have finished.
func (g *Gateway) revert(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	org := httpapi.Org(r, r.URL.Query().Get("organization_id"))
	var body RevertRequest
	dec := json.NewDecoder(io.LimitReader(r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil && !errors.Is(err, io.EOF) {
		g.fail(w, r, malformedBody("the revert request is not a JSON object of name, reference, reference_origin, metadata, deadline, dry_run and force: "+err.Error()))
		return
	}
	parent, found, err := g.lookup(r.Context(), id, org)
	switch {
	case err != nil:
		httpapi.WriteError(w, http.StatusServiceUnavailable, "lookup_failed", err.Error(), map[string]any{"id": id})
		return
	case !found:
		httpapi.NotFound(w, "no import "+id)
		return
	}
	now := g.cfg.Now().UTC()
	if no := imports.CheckRevertible(parent, g.cfg.RevertWindow, now); no != nil {
		status := http.StatusUnprocessableEntity
		if no.Code == imports.RevertNotFinished {
			status = http.StatusConflict
		}
		httpapi.WriteError(w, status, no.Code, no.Message, map[string]any{"id": id, "status": parent.Status})
		return
	}
	opts := events.Options{
		ID: imports.NewID(now), OrganizationID: parent.OrganizationID, Mode: parent.Mode, Resource: parent.Resource,
		Action: events.ActionRevert, ParentImportID: id, ParentResourceID: parent.ParentResourceID,
		Name: body.Name, Reference: body.Reference, ReferenceOrigin: body.ReferenceOrigin, Metadata: body.Metadata,
		Deadline: body.Deadline, DryRun: body.DryRun, Force: body.Force, CreatedBy: httpapi.Principal(r),
	}
	if opts.Name == "" {
		opts.Name = "Revert of " + cmp.Or(parent.Name, id)
	}
	in := &createInput{opts: opts, optionsOnly: true}
	if err := imports.Normalize(&in.opts); err != nil {
		var oe *imports.OptionError
		if errors.As(err, &oe) {
			g.fail(w, r, invalidOption(oe.Field, oe.Message))
			return
		}
		g.fail(w, r, invalidOption("options", err.Error()))
		return
	}
	if de := imports.CheckDeadline(in.opts, now); de != nil {
		g.fail(w, r, invalidOption(de.Field, de.Message))
		return
	}
	idem, err := g.idempotency(r, in)
	if err != nil {
		g.fail(w, r, err)
		return
	}
	if idem != nil && idem.found != nil {
		g.repeat(w, r, idem.found)
		return
	}
	req := events.ImportRequested{Options: in.opts}
	ce, err := events.New("req:"+in.opts.ID, Source, events.EventRequested, in.opts.ID, req)
	if err != nil {
		g.fail(w, r, err)
		return
	}
	ce.Time = now
	imp := imports.Initial(in.opts, now)
	g.finishCreate(w, r, idem, published{subject: events.Subject(in.opts.OrganizationID, in.opts.Resource, events.EventRequested), event: ce},
		createResponse{Import: imp})
}
