package webhooks

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/rs/zerolog"

	"github.com/inlet-dev/inlet/events"
	"github.com/inlet-dev/inlet/internal/httpapi"
	"github.com/inlet-dev/inlet/internal/store"
	"github.com/inlet-dev/inlet/internal/textlimit"
)

// Bounds of a subscription.
const (
	MaxURL         = 2048
	MaxDescription = 256
	MinSecret      = 16
	MaxSecret      = 128
	// MaxPerOrg is how many subscriptions one organization may have.
	MaxPerOrg = 50
	// maxBody bounds a create request's body.
	maxBody = 16 << 10
)

// API serves the webhook routes. Reads (GET) are mounted with the
// projector's, writes with the gateway's: the separate shape's ingress
// sends each method to one of them (deploy/compose/api.conf).
type API struct {
	Store store.WebhookStore
	Log   zerolog.Logger
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// MountReads registers the GET routes.
func (a *API) MountReads(r httpapi.Router) {
	r.HandleFunc("GET /v1/webhooks", a.list)
	r.HandleFunc("GET /v1/webhooks/{id}", a.get)
	r.HandleFunc("GET /v1/webhooks/{id}/deliveries", a.deliveries)
}

// MountWrites registers the routes that change subscriptions.
func (a *API) MountWrites(r httpapi.Router) {
	r.HandleFunc("POST /v1/webhooks", a.create)
	r.HandleFunc("PATCH /v1/webhooks/{id}", a.update)
	r.HandleFunc("DELETE /v1/webhooks/{id}", a.delete)
	r.HandleFunc("POST /v1/webhooks/{id}/enable", a.enable(true))
	r.HandleFunc("POST /v1/webhooks/{id}/disable", a.enable(false))
	r.HandleFunc("POST /v1/webhooks/{id}/deliveries/{delivery}/redeliver", a.redeliver)
}

func (a *API) now() time.Time {
	if a.Now != nil {
		return a.Now()
	}
	return time.Now()
}

func (a *API) internal(w http.ResponseWriter, r *http.Request, err error) {
	a.Log.Error().Err(err).Str("path", r.URL.Path).Msg("webhooks API failed")
	httpapi.WriteError(w, http.StatusInternalServerError, "internal", err.Error(), nil)
}

func invalid(w http.ResponseWriter, field, message string) {
	httpapi.WriteError(w, http.StatusUnprocessableEntity, "invalid_webhook", field+": "+message, map[string]any{"field": field})
}

func badParam(w http.ResponseWriter, param, message string) {
	httpapi.WriteError(w, http.StatusBadRequest, "invalid_parameter", param+": "+message, map[string]any{"parameter": param})
}

// org is the organization of a request; a name that cannot be one is refused.
func org(w http.ResponseWriter, r *http.Request, explicit string) (string, bool) {
	o, fe := httpapi.ResolveOrg(r, explicit)
	if fe != nil {
		httpapi.WriteForeignOrg(w, fe)
		return "", false
	}
	if explicit == "" {
		o = httpapi.Org(r, r.URL.Query().Get(httpapi.OrgParam))
	}
	if !events.ValidToken(o) {
		badParam(w, httpapi.OrgParam, fmt.Sprintf("%q is not a valid organization id", o))
		return "", false
	}
	return o, true
}

// createBody is events.WebhookCreate with the organization a request made
// without an API key may name.
type createBody struct {
	events.WebhookCreate
	OrganizationID string `json:"organization_id,omitempty"`
}

// decodeBody reads a JSON object of at most maxBody bytes into v, refusing
// a field v does not have (fields lists those it has) or of the wrong type,
// naming it; it answers the request itself when it returns false.
func decodeBody(w http.ResponseWriter, r *http.Request, v any, fields string) bool {
	raw, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		httpapi.WriteError(w, http.StatusBadRequest, "malformed_body", "reading the body: "+err.Error(), nil)
		return false
	}
	if len(raw) > maxBody {
		httpapi.WriteError(w, http.StatusRequestEntityTooLarge, "body_too_large",
			fmt.Sprintf("a webhook is at most %d bytes of JSON", maxBody), nil)
		return false
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	err = dec.Decode(v)
	if err == nil {
		return true
	}
	var ute *json.UnmarshalTypeError
	if errors.As(err, &ute) && ute.Field != "" {
		kind := "string"
		if t := ute.Type; t.Kind() == reflect.Slice || t.Kind() == reflect.Pointer && t.Elem().Kind() == reflect.Slice {
			kind = "array of strings"
		}
		// The path may run through an embedded struct: the body is flat.
		field := ute.Field[strings.LastIndexByte(ute.Field, '.')+1:]
		invalid(w, field, "must be a JSON "+kind+", not "+ute.Value)
		return false
	}
	if f, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		invalid(w, strings.Trim(f, `"`), "is not a field here ("+fields+")")
		return false
	}
	httpapi.WriteError(w, http.StatusBadRequest, "malformed_body", "the body is not a JSON object: "+err.Error(), nil)
	return false
}

func (a *API) create(w http.ResponseWriter, r *http.Request) {
	var body createBody
	if !decodeBody(w, r, &body, "url, events, secret, description") {
		return
	}
	o, ok := org(w, r, body.OrganizationID)
	if !ok {
		return
	}
	hook, field, msg := Validate(body.WebhookCreate)
	if field != "" {
		invalid(w, field, msg)
		return
	}
	existing, err := a.Store.ListWebhooks(r.Context(), o, "", MaxPerOrg)
	if err != nil {
		a.internal(w, r, err)
		return
	}
	if len(existing) >= MaxPerOrg {
		httpapi.WriteError(w, http.StatusUnprocessableEntity, "too_many_webhooks",
			fmt.Sprintf("organization %s has %d webhooks, the most it may have: delete one first", o, MaxPerOrg), nil)
		return
	}
	hook.ID, hook.Org, hook.CreatedAt = newID(a.now()), o, a.now().UTC().Truncate(time.Microsecond)
	if err := a.Store.CreateWebhook(r.Context(), hook); err != nil {
		a.internal(w, r, err)
		return
	}
	created, err := a.Store.GetWebhook(r.Context(), o, hook.ID)
	if err != nil {
		a.internal(w, r, err)
		return
	}
	out := toAPI(created)
	out.Secret = created.Secret // shown once
	w.Header().Set("Location", "/v1/webhooks/"+created.ID)
	httpapi.WriteJSON(w, http.StatusCreated, out)
}

// Validate checks a create request and returns the subscription it asks
// for (secret generated when it names none, events defaulted), or the
// field at fault and why.
func Validate(c events.WebhookCreate) (hook store.Webhook, field, message string) {
	if c.URL == "" {
		return hook, "url", "is required: the http(s) URL to POST the events to"
	}
	if len(c.URL) > MaxURL {
		return hook, "url", fmt.Sprintf("is %d bytes long, at most %d are allowed", len(c.URL), MaxURL)
	}
	u, err := url.Parse(c.URL)
	switch {
	case err != nil:
		return hook, "url", "is not a URL: " + textlimit.Quote(c.URL)
	case u.Scheme != "http" && u.Scheme != "https":
		return hook, "url", fmt.Sprintf("must be an http or https URL, not %s", textlimit.Quote(c.URL))
	case u.Host == "" || u.Hostname() == "":
		return hook, "url", "names no host: " + textlimit.Quote(c.URL)
	case u.User != nil:
		return hook, "url", "must not carry credentials (user:password@): authenticate deliveries by their signature"
	case u.Fragment != "":
		return hook, "url", "must not have a #fragment (it is never sent)"
	}
	evs := c.Events
	if evs == nil {
		evs = events.DefaultWebhookEvents
	}
	if len(evs) == 0 {
		return hook, "events", "must name at least one event of " + strings.Join(events.WebhookEvents, ", ") + " (omit it for the terminal ones)"
	}
	var chosen []string
	for i, e := range evs {
		if !slices.Contains(events.WebhookEvents, e) {
			return hook, fmt.Sprintf("events[%d]", i), fmt.Sprintf("%s is not an event a webhook can receive: one of %s",
				textlimit.Quote(e), strings.Join(events.WebhookEvents, ", "))
		}
		if !slices.Contains(chosen, e) {
			chosen = append(chosen, e)
		}
	}
	if !utf8.ValidString(c.Description) || len(c.Description) > MaxDescription {
		return hook, "description", fmt.Sprintf("must be UTF-8 text of at most %d bytes", MaxDescription)
	}
	secret := c.Secret
	if secret == "" {
		secret = newSecret()
	} else if len(secret) < MinSecret || len(secret) > MaxSecret || strings.ContainsFunc(secret, func(r rune) bool { return r < '!' || r > '~' }) {
		return hook, "secret", fmt.Sprintf("must be %d to %d printable ASCII characters without spaces (omit it to have one generated)", MinSecret, MaxSecret)
	}
	return store.Webhook{URL: c.URL, Events: chosen, Secret: secret, Description: c.Description}, "", ""
}

func (a *API) load(w http.ResponseWriter, r *http.Request) (store.Webhook, bool) {
	o, ok := org(w, r, "")
	if !ok {
		return store.Webhook{}, false
	}
	id := r.PathValue("id")
	hook, err := a.Store.GetWebhook(r.Context(), o, id)
	if errors.Is(err, store.ErrNotFound) {
		httpapi.NotFound(w, "no webhook "+id)
		return hook, false
	}
	if err != nil {
		a.internal(w, r, err)
		return hook, false
	}
	return hook, true
}

func (a *API) get(w http.ResponseWriter, r *http.Request) {
	if hook, ok := a.load(w, r); ok {
		httpapi.WriteJSON(w, http.StatusOK, toAPI(hook))
	}
}

func (a *API) list(w http.ResponseWriter, r *http.Request) {
	o, ok := org(w, r, "")
	if !ok {
		return
	}
	limit, err := httpapi.Limit(r)
	if err != nil {
		badParam(w, "limit", err.Error())
		return
	}
	hooks, err := a.Store.ListWebhooks(r.Context(), o, r.URL.Query().Get("starting_after"), limit+1)
	if err != nil {
		a.internal(w, r, err)
		return
	}
	out := make([]events.Webhook, len(hooks))
	for i, h := range hooks {
		out[i] = toAPI(h)
	}
	httpapi.WriteJSON(w, http.StatusOK, httpapi.NewPage(out, limit, func(h events.Webhook) string { return h.ID }))
}

func (a *API) delete(w http.ResponseWriter, r *http.Request) {
	o, ok := org(w, r, "")
	if !ok {
		return
	}
	id := r.PathValue("id")
	err := a.Store.DeleteWebhook(r.Context(), o, id)
	if errors.Is(err, store.ErrNotFound) {
		httpapi.NotFound(w, "no webhook "+id)
		return
	}
	if err != nil {
		a.internal(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// DisabledByUser is the reason of a subscription disabled through the API.
const DisabledByUser = "disabled through the API"

func (a *API) enable(enabled bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		o, ok := org(w, r, "")
		if !ok {
			return
		}
		id := r.PathValue("id")
		hook, err := a.Store.EnableWebhook(r.Context(), o, id, enabled, DisabledByUser)
		if errors.Is(err, store.ErrNotFound) {
			httpapi.NotFound(w, "no webhook "+id)
			return
		}
		if err != nil {
			a.internal(w, r, err)
			return
		}
		httpapi.WriteJSON(w, http.StatusOK, toAPI(hook))
	}
}

func (a *API) deliveries(w http.ResponseWriter, r *http.Request) {
	hook, ok := a.load(w, r)
	if !ok {
		return
	}
	limit, err := httpapi.Limit(r)
	if err != nil {
		badParam(w, "limit", err.Error())
		return
	}
	state := r.URL.Query().Get("state")
	if state != "" && !slices.Contains([]string{events.DeliveryPending, events.DeliveryDelivered, events.DeliveryFailed}, state) {
		badParam(w, "state", fmt.Sprintf("%s is not a delivery state: pending, delivered or failed", textlimit.Quote(state)))
		return
	}
	ds, err := a.Store.ListDeliveries(r.Context(), store.DeliveryFilter{Org: hook.Org, WebhookID: hook.ID, State: state,
		After: r.URL.Query().Get("starting_after"), Limit: limit + 1})
	if err != nil {
		a.internal(w, r, err)
		return
	}
	out := make([]events.WebhookDelivery, len(ds))
	for i, d := range ds {
		out[i] = deliveryToAPI(d)
	}
	httpapi.WriteJSON(w, http.StatusOK, httpapi.NewPage(out, limit, func(d events.WebhookDelivery) string { return d.ID }))
}

// redeliver sends a delivery again (a receiver lost it, or was fixed after
// it failed): pending, due now, with the same event id and body.
func (a *API) redeliver(w http.ResponseWriter, r *http.Request) {
	o, ok := org(w, r, "")
	if !ok {
		return
	}
	id := r.PathValue("delivery")
	d, err := a.Store.RedeliverDelivery(r.Context(), o, r.PathValue("id"), id, a.now())
	if errors.Is(err, store.ErrNotFound) {
		httpapi.NotFound(w, "no delivery "+id+" of webhook "+r.PathValue("id"))
		return
	}
	if err != nil {
		a.internal(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusAccepted, deliveryToAPI(d))
}

// update changes a subscription's URL, events or description; the secret
// is not among them: to rotate it, create a second subscription, switch
// the receiver to accept both secrets, and delete the first (receivers
// dedupe by event id meanwhile).
func (a *API) update(w http.ResponseWriter, r *http.Request) {
	var body events.WebhookUpdate
	if !decodeBody(w, r, &body, "url, events, description; to rotate the secret, create a new webhook and delete this one") {
		return
	}
	hook, ok := a.load(w, r)
	if !ok {
		return
	}
	c := events.WebhookCreate{URL: hook.URL, Events: hook.Events, Secret: hook.Secret, Description: hook.Description}
	if body.URL != nil {
		c.URL = *body.URL
	}
	if body.Events != nil {
		c.Events = *body.Events
	}
	if body.Description != nil {
		c.Description = *body.Description
	}
	next, field, msg := Validate(c)
	if field != "" {
		invalid(w, field, msg)
		return
	}
	next.ID, next.Org = hook.ID, hook.Org
	updated, err := a.Store.UpdateWebhook(r.Context(), next)
	if errors.Is(err, store.ErrNotFound) {
		httpapi.NotFound(w, "no webhook "+hook.ID)
		return
	}
	if err != nil {
		a.internal(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, toAPI(updated))
}
