package gateway

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/inlet-dev/inlet/events"
	"github.com/inlet-dev/inlet/internal/blob"
	"github.com/inlet-dev/inlet/internal/httpapi"
	"github.com/inlet-dev/inlet/internal/imports"
	"github.com/inlet-dev/inlet/internal/store"
)

// IdempotencyHeader names a create: a repeat with the same key (in the same
// organization) creates nothing and answers 200 with the import the first
// request created; the same key with a different request is refused.
const IdempotencyHeader = events.IdempotencyHeader

// maxIdempotencyKey bounds the header (Stripe's limit).
const maxIdempotencyKey = 255

// idemRecord is what the first request under a key leaves.
type idemRecord struct {
	ImportID    string `json:"import_id"`
	Fingerprint string `json:"fingerprint"`
	// Subject and Event are the import-requested event, published again by
	// a repeat that finds no trace of the import (the first publish failed).
	Subject  string            `json:"subject"`
	Event    events.CloudEvent `json:"event"`
	Response createResponse    `json:"response"`
}

type idemState struct {
	key         string
	fingerprint string
	found       *idemRecord
	// fileKey is the file this request stored, removed if it loses the race.
	fileKey string
}

// fingerprint identifies what a create asks for: the options (defaults
// applied, so leaving one out equals giving its default) and the file's name
// and content. A multipart body's boundary, the field order or the JSON
// spacing do not count.
func fingerprint(in *createInput) string {
	opts := in.opts
	opts.ID, opts.CreatedBy = "", ""
	fp := struct {
		Options events.Options `json:"options"`
		Kind    string         `json:"kind"`
		File    string         `json:"file,omitempty"`
		Sum     string         `json:"sum,omitempty"`
	}{Options: opts, Kind: "file"}
	if in.optionsOnly {
		fp.Kind = "upload_link"
	} else if in.up != nil {
		fp.File, fp.Sum = in.up.name, in.up.sum
	}
	b, _ := json.Marshal(fp)
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// idempotency reads the request's Idempotency-Key record, if it has a key.
func (g *Gateway) idempotency(r *http.Request, in *createInput) (*idemState, error) {
	key := r.Header.Get(IdempotencyHeader)
	if key == "" {
		return nil, nil
	}
	if len(key) > maxIdempotencyKey {
		return nil, &apiError{status: http.StatusBadRequest, code: "invalid_idempotency_key",
			message: fmt.Sprintf("%s is longer than %d characters", IdempotencyHeader, maxIdempotencyKey),
			details: map[string]any{"header": IdempotencyHeader}}
	}
	st := &idemState{key: imports.IdempotencyKey(in.opts.OrganizationID, key), fingerprint: fingerprint(in)}
	rc, err := g.cfg.Blobs.Get(r.Context(), st.key)
	if errors.Is(err, blob.ErrNotFound) {
		return st, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read idempotency record: %w", err)
	}
	defer rc.Close()
	var rec idemRecord
	if err := json.NewDecoder(rc).Decode(&rec); err != nil {
		return nil, fmt.Errorf("idempotency record %s: %w", st.key, err)
	}
	if rec.Fingerprint != st.fingerprint {
		return nil, &apiError{status: http.StatusUnprocessableEntity, code: "idempotency_key_reused",
			message: fmt.Sprintf("%s %q was used for a different request (import %s): use a new key for a new import", IdempotencyHeader, key, rec.ImportID),
			details: map[string]any{"header": IdempotencyHeader, "id": rec.ImportID}}
	}
	st.found = &rec
	return st, nil
}

// remember writes the record of a first request as a claim: of two first
// requests racing under one key exactly one writes it, and the other gets
// the winner's record back (to answer as a repeat) instead of creating a
// second import.
func (g *Gateway) remember(ctx context.Context, st *idemState, p published, resp createResponse) (*idemRecord, error) {
	var rec idemRecord
	won, err := blob.Claim(ctx, g.cfg.Blobs, st.key,
		idemRecord{ImportID: resp.ID, Fingerprint: st.fingerprint, Subject: p.subject, Event: p.event, Response: resp}, &rec)
	if err != nil || won {
		if err != nil {
			err = fmt.Errorf("store idempotency record: %w", err)
		}
		return nil, err
	}
	if rec.Fingerprint != st.fingerprint {
		return nil, &apiError{status: http.StatusUnprocessableEntity, code: "idempotency_key_reused",
			message: fmt.Sprintf("%s was used at the same time for a different request (import %s): use a new key for a new import", IdempotencyHeader, rec.ImportID),
			details: map[string]any{"header": IdempotencyHeader, "id": rec.ImportID}}
	}
	return &rec, nil
}

// repeat answers a create whose Idempotency-Key names an import already
// created: 200 with its current object (the view, when the gateway has the
// view store and the projector has it), else the first response.
func (g *Gateway) repeat(w http.ResponseWriter, r *http.Request, rec *idemRecord) {
	ctx := r.Context()
	resp := rec.Response
	seen := false
	if g.cfg.Views != nil {
		imp, err := g.cfg.Views.Import(ctx, rec.ImportID)
		switch {
		case err == nil:
			mergeFirst(&imp, rec.Response.Import)
			resp.Import, seen = imp, true
		case !errors.Is(err, store.ErrNotFound):
			g.fail(w, r, err)
			return
		}
	}
	if !seen {
		// No view yet: the pipeline may never have got the request (the
		// first publish failed after the record was written). Publishing it
		// again is safe: the event id makes JetStream keep one.
		if _, err := g.cfg.Blobs.Stat(ctx, imports.ImportKey(rec.ImportID)); errors.Is(err, blob.ErrNotFound) {
			if err := g.cfg.Publisher.PublishEvent(ctx, rec.Subject, rec.Event); err != nil {
				httpapi.WriteError(w, http.StatusServiceUnavailable, "publish_failed",
					"the import request could not be handed to the pipeline: "+err.Error(), map[string]any{"id": rec.ImportID})
				return
			}
		} else if err != nil {
			g.fail(w, r, err)
			return
		}
	}
	w.Header().Set("Location", resp.Links.Self)
	httpapi.WriteJSON(w, http.StatusOK, resp)
}

// mergeFirst fills what the view does not know from the first response: the
// upload link and expiry of an import waiting for its file, the links to the
// converted file.
func mergeFirst(imp *events.Import, first events.Import) {
	if imp.Status == events.StatusRequested {
		if imp.Links.Upload == "" {
			imp.Links.Upload = first.Links.Upload
		}
		if imp.ExpiresAt == nil {
			imp.ExpiresAt = first.ExpiresAt
		}
	}
	if imp.Links.UploadCSV == "" {
		imp.Links.UploadCSV, imp.Links.UploadJSON = first.Links.UploadCSV, first.Links.UploadJSON
	}
}
