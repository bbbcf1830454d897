package gateway

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"path"
	"time"

	"github.com/inlet-dev/inlet/events"
	"github.com/inlet-dev/inlet/internal/blob"
	"github.com/inlet-dev/inlet/internal/httpapi"
	"github.com/inlet-dev/inlet/internal/imports"
	"github.com/inlet-dev/inlet/internal/uploads"
)

// presigner is a blob store that hands out upload URLs (*s3.Store).
type presigner interface {
	PresignPut(ctx context.Context, key string, expiry time.Duration) (string, error)
}

// createRequested answers a create from options alone: the request is kept
// at uploads.RequestKey and published without a source (the import is
// "requested"), and links.upload says where to PUT the file. The file's
// arrival publishes the request again with its source (package uploads for
// S3's bucket notifications, upload below for the local store).
func (g *Gateway) createRequested(w http.ResponseWriter, r *http.Request, opts events.Options, idem *idemState, now time.Time) {
	ctx := r.Context()
	imp := imports.Initial(opts, now)
	imp.Status = events.StatusRequested
	exp := now.Add(g.cfg.UploadTTL)
	imp.ExpiresAt = &exp
	if p, ok := g.cfg.Blobs.(presigner); ok {
		u, err := p.PresignPut(ctx, imports.UploadKey(opts.ID, opts.Format), g.cfg.UploadTTL)
		if err != nil {
			g.fail(w, r, fmt.Errorf("presign the upload URL: %w", err))
			return
		}
		imp.Links.Upload = u
	} else {
		imp.Links.Upload = imp.Links.Self + "/upload?organization_id=" + url.QueryEscape(opts.OrganizationID)
	}
	req := events.ImportRequested{Options: opts, ExpiresAt: imp.ExpiresAt, UploadURL: imp.Links.Upload}
	body, err := json.Marshal(req)
	if err == nil {
		err = g.cfg.Blobs.Put(ctx, imports.RequestKey(opts.ID), bytes.NewReader(body), int64(len(body)))
	}
	if err != nil {
		g.fail(w, r, fmt.Errorf("store the import request: %w", err))
		return
	}
	ce, err := events.New("req:"+opts.ID, Source, events.EventRequested, opts.ID, req)
	if err != nil {
		g.fail(w, r, err)
		return
	}
	ce.Time = now
	g.finishCreate(w, r, idem, published{subject: events.Subject(opts.OrganizationID, opts.Resource, events.EventRequested), event: ce},
		createResponse{Import: imp})
}

// upload is PUT /v1/imports/{id}/upload: the file of an import created from
// options alone, as the request body (the whole body is the file; its
// Content-Type is recorded). It is the upload link on a blob store that
// cannot presign (the local directory); on S3 it works too, and the bucket
// notification of the same file then publishes the same event id, which
// JetStream drops.
func (g *Gateway) upload(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	id := r.PathValue("id")
	org := httpapi.Org(r, r.URL.Query().Get("organization_id"))
	notFound := func() {
		httpapi.NotFound(w, fmt.Sprintf("import %q not found in organization %q, or it was not created to wait for an upload", id, org))
	}
	if !events.ValidToken(id) {
		notFound()
		return
	}
	req, err := uploads.ReadRequest(ctx, g.cfg.Blobs, id)
	if errors.Is(err, blob.ErrNotFound) || (err == nil && req.OrganizationID != org) {
		notFound()
		return
	}
	if err != nil {
		g.fail(w, r, err)
		return
	}
	now := g.cfg.Now().UTC()
	created, ok := imports.IDTime(id)
	if !ok {
		created = now
	}
	if exp := created.Add(g.cfg.UploadTTL); now.After(exp) {
		httpapi.WriteError(w, http.StatusGone, "upload_expired",
			fmt.Sprintf("the upload link of import %s expired at %s: create the import again", id, exp.Format(time.RFC3339)),
			map[string]any{"id": id, "expires_at": exp})
		return
	}
	existing, err := g.cfg.Blobs.List(ctx, imports.SourceKey(id, ""))
	if err != nil {
		g.fail(w, r, err)
		return
	}
	if len(existing) > 0 {
		httpapi.WriteError(w, http.StatusConflict, "upload_exists",
			fmt.Sprintf("import %s already has its file", id), map[string]any{"id": id})
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, g.cfg.MaxUpload+1)
	key := imports.UploadKey(id, req.Format)
	m := &meter{r: r.Body, h: sha256.New(), limit: g.cfg.MaxUpload}
	if err := g.cfg.Blobs.Put(ctx, key, m, -1); err != nil {
		if m.err != nil {
			g.fail(w, r, bodyError(m.err, "file"))
		} else {
			g.fail(w, r, fmt.Errorf("store upload at %s: %w", key, err))
		}
		return
	}
	up := &upload{key: key, name: path.Base(key), contentType: r.Header.Get("Content-Type"), size: m.n, sum: hex.EncodeToString(m.h.Sum(nil))}
	if up.size == 0 {
		g.discard(r, up)
		g.fail(w, r, fieldError(http.StatusUnprocessableEntity, "empty_file", "file", "the file is empty"))
		return
	}
	subject, ce, err := uploads.Event(Source, req, events.Source{Key: up.key, Name: up.name, ContentType: up.contentType}, now)
	if err == nil {
		err = g.cfg.Publisher.PublishEvent(r.Context(), subject, ce)
	}
	if err != nil {
		// Without the event nothing starts the import: remove the file so
		// the client can PUT it again.
		g.discard(r, up)
		g.cfg.Log.Error().Err(err).Str("import", id).Msg("gateway: publish import-requested (upload) failed")
		httpapi.WriteError(w, http.StatusServiceUnavailable, "publish_failed",
			"the upload could not be handed to the pipeline, PUT the file again: "+err.Error(), map[string]any{"id": id})
		return
	}
	imp := imports.Initial(req.Options, created)
	imp.UpdatedAt = now
	imp.File = events.File{Name: up.name, Size: up.size, ContentType: up.contentType, Checksum: "sha256:" + up.sum}
	withUploadLinks(&imp)
	httpapi.WriteJSON(w, http.StatusOK, imp)
}
