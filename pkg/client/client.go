// Package client is the Go client of Inlet. Over HTTP (spec §6) it creates
// imports (with their file, inline records, or an upload link to send the
// file to later), uploads files, interrupts, reads, lists and waits for
// imports and downloads their rejected rows; over NATS JetStream (spec §7)
// it requests imports and waits for their terminal event.
//
// It depends on the public contract (module github.com/inlet-dev/inlet/events)
// and nats.go only: none of the server's dependencies reach a program that
// imports it.
package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/inlet-dev/inlet/events"
)

// Defaults of the Client's tunables.
const (
	// DefaultPollInterval is the pause between two reads of Wait.
	DefaultPollInterval = 250 * time.Millisecond
	// DefaultWaitMargin is how far before an import id's time
	// WaitForCompletion starts reading the stream.
	DefaultWaitMargin = 2 * time.Minute
)

// Client talks to one Inlet deployment. Set its fields before first use; it
// is then safe for concurrent use.
type Client struct {
	nc   *nats.Conn
	base string
	// ReadURL, when set, is where reads go (Get, List, ErrorsCSV,
	// ErrorsJSON, Wait, and the HTTP check of WaitForCompletion): the status
	// projector of a deployment that serves it apart from the gateway.
	// Empty: the base URL serves both, as the all-in-one server does.
	ReadURL string
	// HTTP is the HTTP client of every call.
	HTTP *http.Client
	// Org, when set, is sent as X-Organization-Id: the organization of
	// calls that name none (with an API key it may only repeat the key's).
	Org string
	// APIKey, when set, is sent as Authorization: Bearer (required by every
	// service that is not the embedded default).
	APIKey string
	// PollInterval is the pause between two reads of Wait; zero is
	// DefaultPollInterval.
	PollInterval time.Duration
	// WaitMargin is how far before the time in an import's id
	// WaitForCompletion starts reading the stream, to allow for the clock
	// of whoever made the id running ahead of the NATS server's; zero is
	// DefaultWaitMargin.
	WaitMargin time.Duration
}

// New returns a client publishing on nc and calling the HTTP API at baseURL
// (e.g. http://127.0.0.1:8080). Either may be zero when its calls are not used.
func New(nc *nats.Conn, baseURL string) *Client {
	return &Client{nc: nc, base: strings.TrimRight(baseURL, "/"), HTTP: http.DefaultClient}
}

// Error is an error response of the HTTP API: its status and the
// {"error": {code, message, details}} body (Code "http_error" and the body
// as Message when the answer is not that JSON, e.g. from a proxy).
type Error struct {
	Status  int
	Code    string
	Message string
	Details map[string]any
}

func (e *Error) Error() string {
	return fmt.Sprintf("inlet: HTTP %d %s: %s", e.Status, e.Code, e.Message)
}

// StatusCode is the HTTP status of an API error, 0 for any other error.
func StatusCode(err error) int {
	var e *Error
	if errors.As(err, &e) {
		return e.Status
	}
	return 0
}

// IsNotFound reports whether err is a 404 of the API.
func IsNotFound(err error) bool { return StatusCode(err) == http.StatusNotFound }

// IsUnavailable reports whether err says the server could not answer now
// rather than that the call was wrong: no connection, or a 502, 503 or 504
// (a service restarting, not ready, or a dependency down). Such a call may
// succeed later.
func IsUnavailable(err error) bool {
	switch StatusCode(err) {
	case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	var ue *url.Error
	return errors.As(err, &ue) && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded)
}

// call is one HTTP request of the API.
type call struct {
	method string
	// path is relative to the base (or read) URL, or an absolute URL.
	path  string
	read  bool
	query url.Values
	// org overrides the client's Org for this call.
	org         string
	body        io.Reader
	contentType string
	header      http.Header
	// want are the statuses that mean success; nil is any 2xx.
	want []int
}

func (c *Client) readBase() string {
	if c.ReadURL != "" {
		return strings.TrimRight(c.ReadURL, "/")
	}
	return c.base
}

// do sends the call and returns the response, its body still to read, when
// its status is wanted; otherwise an *Error.
func (c *Client) do(ctx context.Context, cl call) (*http.Response, error) {
	base := c.base
	if cl.read {
		base = c.readBase()
	}
	u, own, err := resolve(base, cl.path)
	if err != nil {
		return nil, err
	}
	if len(cl.query) > 0 {
		q := u.Query()
		for k, vs := range cl.query {
			q[k] = vs
		}
		u.RawQuery = q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, cl.method, u.String(), cl.body)
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	if req.ContentLength == 0 && cl.body != nil {
		req.ContentLength = bodyLength(cl.body)
	}
	for k, vs := range cl.header {
		req.Header[k] = vs
	}
	if cl.contentType != "" {
		req.Header.Set("Content-Type", cl.contentType)
	}
	// Credentials go to the API only, never to another host (a presigned
	// upload URL of the blob store carries its own).
	if own {
		if c.APIKey != "" {
			req.Header.Set("Authorization", "Bearer "+c.APIKey)
		}
		org := cl.org
		if org == "" {
			org = c.Org
		}
		if org != "" {
			req.Header.Set(events.OrgHeader, org)
		}
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("client: %s %s: %w", cl.method, cl.path, err)
	}
	if wanted(resp.StatusCode, cl.want) {
		return resp, nil
	}
	defer resp.Body.Close()
	return nil, errorOf(resp)
}

// resolve makes path absolute against base; own tells whether the result is
// on base's host, and so gets the client's credentials.
func resolve(base, path string) (u *url.URL, own bool, err error) {
	ref, err := url.Parse(path)
	if err != nil {
		return nil, false, fmt.Errorf("client: URL %q: %w", path, err)
	}
	if ref.IsAbs() {
		b, err := url.Parse(base)
		return ref, err == nil && base != "" && b.Scheme == ref.Scheme && b.Host == ref.Host, nil
	}
	if base == "" {
		return nil, false, errors.New("client: HTTP calls need a base URL")
	}
	b, err := url.Parse(base + "/")
	if err != nil {
		return nil, false, fmt.Errorf("client: base URL %q: %w", base, err)
	}
	// Paths of the API are absolute (/v1/...); resolved under base, so a
	// base with a path prefix (https://host/inlet) keeps it.
	ref.Path = strings.TrimPrefix(ref.Path, "/")
	if ref.RawPath != "" {
		ref.RawPath = strings.TrimPrefix(ref.RawPath, "/")
	}
	return b.ResolveReference(ref), true, nil
}

func wanted(status int, want []int) bool {
	if want == nil {
		return status >= 200 && status < 300
	}
	for _, w := range want {
		if status == w {
			return true
		}
	}
	return false
}

// errorOf reads an unwanted answer into an *Error.
func errorOf(resp *http.Response) *Error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	var body events.ErrorBody
	if json.Unmarshal(b, &body) != nil || body.Error.Code == "" {
		msg := strings.TrimSpace(string(b))
		if msg == "" {
			msg = resp.Status
		}
		return &Error{Status: resp.StatusCode, Code: "http_error", Message: msg}
	}
	return &Error{Status: resp.StatusCode, Code: body.Error.Code, Message: body.Error.Message, Details: body.Error.Details}
}

// bodyLength is the length of what is left of a seekable body (a file),
// which net/http does not find by itself: S3 refuses a presigned PUT without
// Content-Length. 0 lets net/http send it chunked.
func bodyLength(r io.Reader) int64 {
	s, ok := r.(io.Seeker)
	if !ok {
		return 0
	}
	cur, err := s.Seek(0, io.SeekCurrent)
	if err != nil {
		return 0
	}
	end, err := s.Seek(0, io.SeekEnd)
	if _, back := s.Seek(cur, io.SeekStart); err != nil || back != nil {
		return 0
	}
	return end - cur
}

// getJSON GETs a read path into out.
func (c *Client) getJSON(ctx context.Context, cl call, out any) error {
	cl.method, cl.read, cl.want = http.MethodGet, true, []int{http.StatusOK}
	resp, err := c.do(ctx, cl)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("client: GET %s: decode: %w", cl.path, err)
	}
	return nil
}
