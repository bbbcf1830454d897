package projector

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/rs/zerolog"

	"github.com/inlet-dev/inlet/events"
	"github.com/inlet-dev/inlet/internal/blob"
	"github.com/inlet-dev/inlet/internal/httpapi"
	"github.com/inlet-dev/inlet/internal/resources"
	"github.com/inlet-dev/inlet/internal/store"
)

// ResourceLister is what the read API needs of the resource registry
// (*resources.Registry satisfies it).
type ResourceLister interface {
	List() []*resources.Resource
	Get(name string) (*resources.Resource, bool)
}

// Config wires the read API to its dependencies.
type Config struct {
	Views    store.ViewStore
	Records  store.RecordStore
	Blobs    blob.Store
	Registry ResourceLister
	// Ready lists the readiness checks of /readyz; nil checks the blob store
	// and the view store.
	Ready []httpapi.Check
	Log   zerolog.Logger
	// Closing ends the import event streams when it is closed (the server
	// shuts down: it would otherwise wait for every watcher); nil never.
	Closing <-chan struct{}
}

// API serves the read side of spec §6.
type API struct{ cfg Config }

// NewAPI returns the read API; Mount it on a mux or use NewHTTP.
func NewAPI(cfg Config) *API { return &API{cfg: cfg} }

// Mount registers the /v1 read routes on r (not httpapi.MountCommon's, so
// the all-in-one server can mount the gateway on the same mux and register
// those once).
func (a *API) Mount(r httpapi.Router) {
	r.HandleFunc("GET /v1/imports", a.listImports)
	r.HandleFunc("GET /v1/imports/{id}", a.getImport)
	r.HandleFunc("GET /v1/imports/{id}/errors.csv", a.errorsCSV)
	r.HandleFunc("GET /v1/imports/{id}/errors.json", a.errorsJSON)
	a.mountSource(r) // upload.csv, upload.json: source.go
	r.HandleFunc(events.ImportEventsRoute, a.streamImport)
	r.HandleFunc("GET /v1/resources", a.listResources)
	r.HandleFunc("GET /v1/resources/{name}/records", a.listRecords)
	r.HandleFunc("GET /v1/resources/{name}/records/{id}", a.getRecord)
}

// ReadyChecks are the configured readiness checks, or the defaults.
func (a *API) ReadyChecks() []httpapi.Check {
	if a.cfg.Ready != nil {
		return a.cfg.Ready
	}
	return []httpapi.Check{
		{Name: "blob", Fn: func(ctx context.Context) error { return a.cfg.Blobs.Ping(ctx) }},
		{Name: "store", Fn: func(ctx context.Context) error {
			_, err := a.cfg.Views.ListViews(ctx, store.ViewFilter{Limit: 1})
			return err
		}},
	}
}

// NewHTTP is the projector process's whole handler: the read routes plus
// httpapi.MountCommon's.
func NewHTTP(cfg Config) http.Handler {
	a := NewAPI(cfg)
	mux := http.NewServeMux()
	a.Mount(mux)
	httpapi.MountCommon(mux, a.ReadyChecks()...)
	return httpapi.Routes(mux)
}

func badParam(w http.ResponseWriter, param, message string) {
	httpapi.WriteError(w, http.StatusBadRequest, "invalid_parameter", param+": "+message, map[string]any{"parameter": param})
}

func (a *API) internal(w http.ResponseWriter, r *http.Request, err error) {
	a.cfg.Log.Error().Err(err).Str("path", r.URL.Path).Msg("read API failed")
	httpapi.WriteError(w, http.StatusInternalServerError, "internal", err.Error(), nil)
}

// org is the organization a read is scoped to; invalid ones are refused
// rather than matched, so a typo never looks like an empty tenant.
func org(w http.ResponseWriter, r *http.Request) (string, bool) {
	o := httpapi.Org(r, r.URL.Query().Get("organization_id"))
	if !events.ValidToken(o) {
		badParam(w, "organization_id", fmt.Sprintf("%q is not a valid organization id", o))
		return "", false
	}
	return o, true
}

func (a *API) listImports(w http.ResponseWriter, r *http.Request) {
	o, ok := org(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	limit, err := httpapi.Limit(r)
	if err != nil {
		badParam(w, "limit", err.Error())
		return
	}
	status := q.Get("status")
	switch events.Status(status) {
	case "", events.StatusRequested, events.StatusQueued, events.StatusProcessing, events.StatusCompleted,
		events.StatusFailed, events.StatusInterrupted, events.StatusTimedOut, events.StatusExpired:
	default:
		badParam(w, "status", fmt.Sprintf("%q is not an import status", status))
		return
	}
	views, err := a.cfg.Views.ListViews(r.Context(), store.ViewFilter{
		Org: o, Resource: q.Get("resource"), Status: status, Before: q.Get("starting_after"), Limit: limit + 1,
	})
	if err != nil {
		a.internal(w, r, err)
		return
	}
	list := make([]events.Import, 0, len(views))
	for _, v := range views {
		imp, err := ImportOf(v)
		if err != nil {
			a.internal(w, r, err)
			return
		}
		list = append(list, imp)
	}
	httpapi.WriteJSON(w, http.StatusOK, httpapi.NewPage(list, limit, func(i events.Import) string { return i.ID }))
}

// loadImport finds the import of the path's {id} within the request's
// organization; another organization's import is as unknown as a missing one.
func (a *API) loadImport(w http.ResponseWriter, r *http.Request) (events.Import, bool) {
	o, ok := org(w, r)
	if !ok {
		return events.Import{}, false
	}
	id := r.PathValue("id")
	v, err := a.cfg.Views.GetView(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) || (err == nil && v.Org != o) {
		httpapi.NotFound(w, fmt.Sprintf("import %q not found in organization %q", id, o))
		return events.Import{}, false
	}
	if err != nil {
		a.internal(w, r, err)
		return events.Import{}, false
	}
	imp, err := ImportOf(v)
	if err != nil {
		a.internal(w, r, err)
		return events.Import{}, false
	}
	return imp, true
}

func (a *API) getImport(w http.ResponseWriter, r *http.Request) {
	if imp, ok := a.loadImport(w, r); ok {
		httpapi.WriteJSON(w, http.StatusOK, imp)
	}
}

func (a *API) listResources(w http.ResponseWriter, r *http.Request) {
	list := a.cfg.Registry.List()
	out := make([]events.Resource, 0, len(list))
	for _, res := range list {
		j := events.Resource{Name: res.Name, Key: res.Key, AlternateKeys: res.AlternateKeys, References: res.References, Aliases: res.Aliases, Schema: res.Schema}
		if j.AlternateKeys == nil {
			j.AlternateKeys = [][]string{}
		}
		if j.References == nil {
			j.References = map[string]string{}
		}
		if res.Parent != "" {
			p := res.Parent
			j.Parent = &p
		}
		out = append(out, j)
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]any{"data": out})
}

func toRecord(rec store.Record) events.Record {
	j := events.Record{ID: rec.ID, Data: rec.Data, CreatedAt: rec.CreatedAt.UTC(), UpdatedAt: rec.UpdatedAt.UTC()}
	if rec.ParentID != "" {
		p := rec.ParentID
		j.ParentID = &p
	}
	if len(j.Data) == 0 {
		j.Data = json.RawMessage("{}")
	}
	return j
}

// recordScope resolves {name}, the organization and ?mode= of a records call.
func (a *API) recordScope(w http.ResponseWriter, r *http.Request) (*resources.Resource, store.Scope, bool) {
	name := r.PathValue("name")
	res, ok := a.cfg.Registry.Get(name)
	if !ok {
		httpapi.NotFound(w, fmt.Sprintf("resource %q is not in the registry", name))
		return nil, store.Scope{}, false
	}
	o, ok := org(w, r)
	if !ok {
		return nil, store.Scope{}, false
	}
	mode := events.Mode(r.URL.Query().Get("mode"))
	if mode == "" {
		mode = events.ModeLive
	}
	if !slices.Contains(events.Modes, mode) {
		badParam(w, "mode", fmt.Sprintf("%q is not live or test", mode))
		return nil, store.Scope{}, false
	}
	return res, store.Scope{Org: o, Mode: string(mode), Resource: res.Name}, true
}

func (a *API) listRecords(w http.ResponseWriter, r *http.Request) {
	res, scope, ok := a.recordScope(w, r)
	if !ok {
		return
	}
	limit, err := httpapi.Limit(r)
	if err != nil {
		badParam(w, "limit", err.Error())
		return
	}
	var recs []store.Record
	if keys, given := r.URL.Query()["key"]; given {
		recs, err = a.findByKey(r.Context(), res, scope, keys)
		var pe *paramError
		if errors.As(err, &pe) {
			badParam(w, "key", pe.msg)
			return
		}
	} else {
		recs, err = a.cfg.Records.List(r.Context(), scope, r.URL.Query().Get("starting_after"), limit+1)
	}
	if err != nil {
		a.internal(w, r, err)
		return
	}
	out := make([]events.Record, 0, len(recs))
	for _, rec := range recs {
		out = append(out, toRecord(rec))
	}
	httpapi.WriteJSON(w, http.StatusOK, httpapi.NewPage(out, limit, func(j events.Record) string { return j.ID }))
}

type paramError struct{ msg string }

func (e *paramError) Error() string { return e.msg }

// findByKey looks a record up by its primary key. A composite key takes one
// ?key= per key field, in the key's order. Values are coerced and normalized
// the way the pipeline stores keys (spec §5: trimmed, case-insensitive).
func (a *API) findByKey(ctx context.Context, res *resources.Resource, scope store.Scope, values []string) ([]store.Record, error) {
	if len(values) != len(res.Key) {
		return nil, &paramError{fmt.Sprintf("%s's key has %d field(s) (%s): give ?key= once per field, in that order",
			res.Name, len(res.Key), strings.Join(res.Key, ", "))}
	}
	parts := make([]string, len(values))
	for i, f := range res.Key {
		v, problem := res.Coerce(f, values[i])
		if problem != nil {
			return nil, nil // a value of the wrong type identifies nothing
		}
		n, ok := resources.NormalizeValue(v)
		if !ok {
			return nil, &paramError{fmt.Sprintf("value for key field %s is empty", f)}
		}
		parts[i] = n
	}
	ref := store.KeyRef{Name: res.PrimaryKeyName(), Value: strings.Join(parts, resources.KeySep)}
	ids, err := a.cfg.Records.LookupKeys(ctx, scope, []store.KeyRef{ref})
	if err != nil {
		return nil, err
	}
	id, ok := ids[ref.Name+"\x00"+ref.Value]
	if !ok {
		return nil, nil
	}
	rec, err := a.cfg.Records.Get(ctx, scope, id.ID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil // deleted between the two reads
	}
	if err != nil {
		return nil, err
	}
	return []store.Record{rec}, nil
}

func (a *API) getRecord(w http.ResponseWriter, r *http.Request) {
	_, scope, ok := a.recordScope(w, r)
	if !ok {
		return
	}
	id := r.PathValue("id")
	rec, err := a.cfg.Records.Get(r.Context(), scope, id)
	if errors.Is(err, store.ErrNotFound) {
		httpapi.NotFound(w, fmt.Sprintf("record %q not found in %s (organization %q, mode %s)", id, scope.Resource, scope.Org, scope.Mode))
		return
	}
	if err != nil {
		a.internal(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, toRecord(rec))
}
