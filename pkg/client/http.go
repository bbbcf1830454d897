package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"net/url"
	"sort"
	"strconv"
	"time"

	"github.com/inlet-dev/inlet/events"
)

// File is a file to import.
type File struct {
	// Name is the file's name; its extension tells the format when the
	// options name none (.csv, .json, .jsonl, .ndjson, .xlsx).
	Name string
	// ContentType is recorded with the import (default
	// application/octet-stream in a create; none in an upload).
	ContentType string
	Body        io.Reader
}

// CreateRequest is an import to create over HTTP: its options and at most
// one of File and Inputs. With neither, the import is created "requested",
// waiting for its file at links.upload (see Upload).
//
// Options.ID and Options.CreatedBy are the server's to assign: a request
// setting them is refused (choose the id with RequestImport over NATS).
type CreateRequest struct {
	events.Options
	// File is sent as multipart/form-data, after the options as form fields.
	File *File
	// Inputs are inline records (each a JSON object), sent as
	// application/json with the options.
	Inputs []json.RawMessage
	// IdempotencyKey, when set, is sent as Idempotency-Key: repeating the
	// same request under the same key creates nothing and answers the
	// import the first one created.
	IdempotencyKey string
}

// Created is the answer to a create.
type Created struct {
	events.Import
	// Prevalidation is the result of an upload_mode sync create.
	Prevalidation *events.Prevalidation `json:"prevalidation,omitempty"`
	// Repeated is true when the Idempotency-Key named an import created
	// before (the server answered 200, not 201): nothing new was created,
	// and Import is that import as it stands.
	Repeated bool `json:"-"`
}

// Create creates an import (POST /v1/imports).
func (c *Client) Create(ctx context.Context, req CreateRequest) (Created, error) {
	return c.create(ctx, "/v1/imports", req)
}

// Retry starts a child import of the failed rows of finished import id
// (POST /v1/imports/{id}/retry): with req.File (or Inputs), typically the
// parent's errors.csv corrected, or with neither to run the failed rows again
// as they were. The child takes the parent's resource, mode, action,
// duplicate_handling, column_mapping and parent_resource_id; req's options
// are the child's own (name, skip_errors, error_threshold, dry_run, …), and
// an option that contradicts the parent's is refused (422). An unknown parent
// is a 404, one still running a 409, one without failed rows a 422.
func (c *Client) Retry(ctx context.Context, id string, req CreateRequest) (Created, error) {
	return c.create(ctx, importPath(id)+"/retry", req)
}

func (c *Client) create(ctx context.Context, path string, req CreateRequest) (Created, error) {
	var created Created
	if req.File != nil && req.Inputs != nil {
		return created, errors.New("client: a create sends a file or inputs, not both")
	}
	cl := call{method: http.MethodPost, path: path, want: []int{http.StatusCreated, http.StatusOK}}
	if req.IdempotencyKey != "" {
		cl.header = http.Header{events.IdempotencyHeader: {req.IdempotencyKey}}
	}
	if req.File != nil {
		fields, err := formFields(req.Options)
		if err != nil {
			return created, err
		}
		pr, pw := io.Pipe()
		mw := multipart.NewWriter(pw)
		// The file streams from its reader into the request; when the
		// server answers early (a refused option) the transport closes pr
		// and the writes end.
		go func() { pw.CloseWithError(writeForm(mw, fields, req.File)) }()
		defer pr.Close()
		cl.body, cl.contentType = pr, mw.FormDataContentType()
	} else {
		body := struct {
			events.Options
			// A pointer: empty inputs are still inputs (the server refuses
			// them), where no inputs ask for an upload link.
			Inputs *[]json.RawMessage `json:"inputs,omitempty"`
		}{Options: req.Options}
		if req.Inputs != nil {
			body.Inputs = &req.Inputs
		}
		b, err := json.Marshal(body)
		if err != nil {
			return created, fmt.Errorf("client: encode create: %w", err)
		}
		cl.body, cl.contentType = bytes.NewReader(b), "application/json"
	}
	resp, err := c.do(ctx, cl)
	if err != nil {
		return created, err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&created); err != nil {
		return created, fmt.Errorf("client: POST %s: decode: %w", path, err)
	}
	created.Repeated = resp.StatusCode == http.StatusOK
	return created, nil
}

// formFields are the options as multipart form fields. A field's name is the
// option's JSON name and its text the JSON value, unquoted for strings
// (true, 0.5, {"email":"E-mail"}, 2026-03-14T09:00:00Z): the form the
// gateway reads. Options left zero are not sent, so the server's defaults
// apply.
func formFields(o events.Options) (map[string]string, error) {
	b, err := json.Marshal(o)
	if err != nil {
		return nil, fmt.Errorf("client: encode options: %w", err)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, fmt.Errorf("client: encode options: %w", err)
	}
	fields := make(map[string]string, len(raw))
	for name, v := range raw {
		var s string
		if json.Unmarshal(v, &s) == nil {
			if s != "" {
				fields[name] = s
			}
			continue
		}
		fields[name] = string(v)
	}
	return fields, nil
}

// writeForm writes the option fields, sorted, then the file: the gateway
// reads upload_mode before the file streams in.
func writeForm(mw *multipart.Writer, fields map[string]string, f *File) error {
	names := make([]string, 0, len(fields))
	for name := range fields {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if err := mw.WriteField(name, fields[name]); err != nil {
			return err
		}
	}
	ct := f.ContentType
	if ct == "" {
		ct = "application/octet-stream"
	}
	h := textproto.MIMEHeader{}
	h.Set("Content-Disposition", multipart.FileContentDisposition("file", f.Name))
	h.Set("Content-Type", ct)
	part, err := mw.CreatePart(h)
	if err != nil {
		return err
	}
	if f.Body != nil {
		if _, err := io.Copy(part, f.Body); err != nil {
			return fmt.Errorf("client: read %s: %w", f.Name, err)
		}
	}
	return mw.Close()
}

// Upload sends the file of an import created without one to its
// links.upload: the gateway's upload route, or a presigned URL of the blob
// store (which gets none of this client's credentials: it carries its own).
// Both answer 200 when they have the file; the import starts then.
func (c *Client) Upload(ctx context.Context, imp events.Import, f File) error {
	if imp.Links.Upload == "" {
		return fmt.Errorf("client: import %s has no upload link: it was created with its file, or is no longer waiting for one", imp.ID)
	}
	resp, err := c.do(ctx, call{method: http.MethodPut, path: imp.Links.Upload, body: f.Body, contentType: f.ContentType,
		want: []int{http.StatusOK}})
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.Body.Close()
}

// Interrupt asks a running import to stop (POST /v1/imports/{id}/interrupt)
// and returns it as it stands: it stops at its next batch boundary, so wait
// for it to end interrupted. An import that has ended already is a 409
// already_finished.
func (c *Client) Interrupt(ctx context.Context, id string) (events.Import, error) {
	var imp events.Import
	resp, err := c.do(ctx, call{method: http.MethodPost, path: importPath(id) + "/interrupt", want: []int{http.StatusAccepted}})
	if err != nil {
		return imp, err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&imp); err != nil {
		return imp, fmt.Errorf("client: interrupt %s: decode: %w", id, err)
	}
	return imp, nil
}

// Revert starts a child import that puts back every record import id
// changed (POST /v1/imports/{id}/revert); idempotencyKey may be empty.
func (c *Client) Revert(ctx context.Context, id string, req events.RevertRequest, idempotencyKey string) (Created, error) {
	var created Created
	b, err := json.Marshal(req)
	if err != nil {
		return created, fmt.Errorf("client: encode revert: %w", err)
	}
	cl := call{method: http.MethodPost, path: importPath(id) + "/revert", want: []int{http.StatusCreated, http.StatusOK},
		body: bytes.NewReader(b), contentType: "application/json"}
	if idempotencyKey != "" {
		cl.header = http.Header{events.IdempotencyHeader: {idempotencyKey}}
	}
	resp, err := c.do(ctx, cl)
	if err != nil {
		return created, err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&created); err != nil {
		return created, fmt.Errorf("client: revert %s: decode: %w", id, err)
	}
	created.Repeated = resp.StatusCode == http.StatusOK
	return created, nil
}

func importPath(id string) string { return "/v1/imports/" + url.PathEscape(id) }

// Get reads one import.
func (c *Client) Get(ctx context.Context, id string) (events.Import, error) {
	var imp events.Import
	err := c.getJSON(ctx, call{path: importPath(id)}, &imp)
	return imp, err
}

// Filters select imports for List; zero fields match everything (the
// organization defaults to the client's Org, then "default").
type Filters struct {
	OrganizationID string
	Status         events.Status
	Resource       string
	// Limit is the page size (the server's default when 0).
	Limit int
	// StartingAfter is the NextCursor of the page before.
	StartingAfter string
}

// Page is one page of a list.
type Page = events.Page[events.Import]

// List reads one page of imports, newest first.
func (c *Client) List(ctx context.Context, f Filters) (Page, error) {
	q := url.Values{}
	set := func(k, v string) {
		if v != "" {
			q.Set(k, v)
		}
	}
	set(events.OrgParam, f.OrganizationID)
	set("status", string(f.Status))
	set("resource", f.Resource)
	set("starting_after", f.StartingAfter)
	if f.Limit > 0 {
		q.Set("limit", strconv.Itoa(f.Limit))
	}
	var p Page
	err := c.getJSON(ctx, call{path: "/v1/imports", query: q}, &p)
	return p, err
}

// ErrorsCSV writes the import's rejected rows to w as errors.csv: the file's
// own header plus _row, _phase, _code, _field, _message, one line per
// rejected row, ready to fix and import again.
func (c *Client) ErrorsCSV(ctx context.Context, id string, w io.Writer) error {
	resp, err := c.do(ctx, call{method: http.MethodGet, path: importPath(id) + "/errors.csv", read: true, want: []int{http.StatusOK}})
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(w, resp.Body); err != nil {
		return fmt.Errorf("client: errors.csv of %s: %w", id, err)
	}
	return nil
}

// ErrorsJSON reads the import's rejected rows, one entry per problem, in
// row order.
func (c *Client) ErrorsJSON(ctx context.Context, id string) ([]events.RowError, error) {
	var out []events.RowError
	err := c.getJSON(ctx, call{path: importPath(id) + "/errors.json"}, &out)
	return out, err
}

// Wait reads the import over HTTP every PollInterval until its status is
// terminal, and returns it. What a read side answers for a while is waited
// out: an import it does not know yet (a request made over NATS, a
// projector catching up) and a read side that is unavailable (restarting,
// see IsUnavailable). Any other error ends the wait, and so does ctx.
func (c *Client) Wait(ctx context.Context, id string) (events.Import, error) {
	interval := c.PollInterval
	if interval <= 0 {
		interval = DefaultPollInterval
	}
	var last events.Import
	var lastErr error
	for {
		imp, err := c.Get(ctx, id)
		switch {
		case err == nil:
			if imp.Status.Terminal() {
				return imp, nil
			}
			last, lastErr = imp, nil
		case IsNotFound(err) || IsUnavailable(err):
			lastErr = err
		case ctx.Err() == nil:
			return last, err
		}
		select {
		case <-ctx.Done():
			if last.ID == "" {
				return last, fmt.Errorf("client: waiting for import %s, never read it (last: %v): %w", id, lastErr, ctx.Err())
			}
			return last, fmt.Errorf("client: waiting for import %s, still %s: %w", id, last.Status, ctx.Err())
		case <-time.After(interval):
		}
	}
}

// Ready reports whether the API answers GET /readyz with 200: every service
// it depends on is reachable. With a ReadURL both sides must be ready.
func (c *Client) Ready(ctx context.Context) error {
	for _, read := range []bool{false, true} {
		if read && c.ReadURL == "" {
			break
		}
		resp, err := c.do(ctx, call{method: http.MethodGet, path: "/readyz", read: read, want: []int{http.StatusOK}})
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	return nil
}
