package gateway

import (
	"context"
	"errors"
	"net/http"

	"github.com/inlet-dev/inlet/events"
	"github.com/inlet-dev/inlet/internal/blob"
	"github.com/inlet-dev/inlet/internal/httpapi"
	"github.com/inlet-dev/inlet/internal/imports"
	"github.com/inlet-dev/inlet/internal/store"
)

// interrupt asks a running import to stop: it publishes the same interrupt
// command a client may publish on NATS, and answers 202 with the import as it
// stands. The import stops at its next batch boundary.
func (g *Gateway) interrupt(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	org := httpapi.Org(r, r.URL.Query().Get("organization_id"))
	imp, found, err := g.lookup(r.Context(), id, org)
	if err != nil {
		httpapi.WriteError(w, http.StatusServiceUnavailable, "lookup_failed", err.Error(), map[string]any{"id": id})
		return
	}
	if !found {
		httpapi.NotFound(w, "no import "+id)
		return
	}
	if imp.Status.Terminal() {
		httpapi.WriteError(w, http.StatusConflict, "already_finished",
			"import "+id+" has already ended ("+string(imp.Status)+")", map[string]any{"id": id, "status": imp.Status})
		return
	}
	req := events.Interrupt{ImportID: id, RequestedAt: g.cfg.Now().UTC(), By: httpapi.Principal(r)}
	ce, err := events.New("interrupt:"+id, Source, events.EventInterrupt, id, req)
	if err == nil {
		err = g.cfg.Publisher.PublishEvent(r.Context(), events.Subject(imp.OrganizationID, imp.Resource, events.EventInterrupt), ce)
	}
	if err != nil {
		httpapi.WriteError(w, http.StatusServiceUnavailable, "publish_failed", err.Error(), map[string]any{"id": id})
		return
	}
	httpapi.WriteJSON(w, http.StatusAccepted, imp)
}

// lookup finds an import of org: in the views when the gateway has them, else
// in what the pipeline or the gateway stored. Another organization's import
// is not found.
func (g *Gateway) lookup(ctx context.Context, id, org string) (events.Import, bool, error) {
	if g.cfg.Views != nil {
		imp, err := g.cfg.Views.Import(ctx, id)
		if err == nil && imp.OrganizationID == org {
			return imp, true, nil
		}
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return events.Import{}, false, err
		}
	}
	for _, key := range []string{imports.TerminalKey(id), imports.ImportKey(id)} {
		var imp events.Import
		if ok, err := g.loadJSON(ctx, key, &imp); err != nil || ok {
			return imp, ok && imp.OrganizationID == org, err
		}
	}
	var req events.ImportRequested
	ok, err := g.loadJSON(ctx, imports.RequestKey(id), &req)
	if err != nil || !ok || req.OrganizationID != org {
		return events.Import{}, false, err
	}
	o := req.Options
	o.ID = id
	_ = imports.Normalize(&o)
	imp := imports.Initial(o, g.cfg.Now())
	imp.Status = events.StatusRequested
	return imp, true, nil
}

func (g *Gateway) loadJSON(ctx context.Context, key string, v any) (bool, error) {
	return blob.GetJSON(ctx, g.cfg.Blobs, key, v)
}
