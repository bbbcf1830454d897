// Package openapi holds the servers to their API description
// (events.OpenAPI): a Checker validates the answers a test's HTTP client
// receives from Inlet routes against the document. Tests import it; the
// servers do not (its OpenAPI libraries stay out of the binaries).
package openapi

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"
	"github.com/pb33f/libopenapi-validator/config"
	liberrors "github.com/pb33f/libopenapi-validator/errors"
	"github.com/pb33f/libopenapi-validator/schema_validation"
	"github.com/pb33f/libopenapi/datamodel/high/base"

	"github.com/inlet-dev/inlet/events"
)

// spec is the document, built once per process: building the validator
// compiles every schema.
type spec struct {
	validator validator.Validator
	errorBody *base.Schema
	schemas   schema_validation.SchemaValidator
}

var loadSpec = sync.OnceValues(func() (*spec, error) {
	doc, err := Document()
	if err != nil {
		return nil, err
	}
	v, errs := validator.NewValidator(doc, config.WithFormatAssertions())
	if len(errs) > 0 {
		return nil, fmt.Errorf("openapi: %w", errors.Join(errs...))
	}
	model, err := doc.BuildV3Model()
	if err != nil {
		return nil, fmt.Errorf("openapi: %w", err)
	}
	eb := model.Model.Components.Schemas.GetOrZero("ErrorBody")
	if eb == nil {
		return nil, errors.New("openapi: the document has no components.schemas.ErrorBody")
	}
	return &spec{validator: v, errorBody: eb.Schema(), schemas: schema_validation.NewSchemaValidator(config.WithFormatAssertions())}, nil
})

// Document parses events.OpenAPI.
func Document() (libopenapi.Document, error) {
	b, err := events.OpenAPI()
	if err != nil {
		return nil, err
	}
	return libopenapi.NewDocument(b)
}

// Validate checks the document against the OpenAPI specification's own
// schema and builds its model (which resolves every $ref).
func Validate() error {
	doc, err := Document()
	if err != nil {
		return err
	}
	if _, err := doc.BuildV3Model(); err != nil {
		return err
	}
	v, errs := validator.NewValidator(doc)
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	if ok, verrs := v.ValidateDocument(); !ok {
		return joinValidation(verrs)
	}
	return nil
}

// Inlet reports whether path is one of Inlet's routes (or would be): what
// the document describes. Anything else a client reaches (a presigned
// upload URL on the blob store) is not checked.
func Inlet(path string) bool {
	return strings.HasPrefix(path, "/v1/") || path == "/healthz" || path == "/readyz"
}

// Checker records the answers that disagree with the document.
type Checker struct {
	mu         sync.Mutex
	violations []string
}

// Violations are the disagreements so far, one line each.
func (c *Checker) Violations() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.violations...)
}

// Client is base (nil: a new one) with every answer of an Inlet route
// checked; t fails at its end when any disagreed with the document.
func Client(t testing.TB, base *http.Client) *http.Client {
	t.Helper()
	c := &Checker{}
	t.Cleanup(func() {
		for _, v := range c.Violations() {
			t.Errorf("answer not as the API description says: %s", v)
		}
	})
	out := &http.Client{}
	if base != nil {
		*out = *base
	}
	out.Transport = c.Transport(out.Transport)
	return out
}

// Transport is next (nil: http.DefaultTransport) with every answer of an
// Inlet route checked.
func (c *Checker) Transport(next http.RoundTripper) http.RoundTripper {
	if next == nil {
		next = http.DefaultTransport
	}
	return roundTripper(func(req *http.Request) (*http.Response, error) {
		resp, err := next.RoundTrip(req)
		if err != nil || !Inlet(req.URL.Path) {
			return resp, err
		}
		if v := c.check(req, resp); v != "" {
			c.mu.Lock()
			c.violations = append(c.violations, v)
			c.mu.Unlock()
		}
		return resp, nil
	})
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// check validates one answer; "" when it agrees. A JSON body is read whole
// (and handed on to the caller unchanged); other bodies (text/csv) are not
// read: the document says nothing of their content the validator checks.
func (c *Checker) check(req *http.Request, resp *http.Response) string {
	s, err := loadSpec()
	if err != nil {
		return err.Error()
	}
	what := fmt.Sprintf("%s %s → %d", req.Method, req.URL.Path, resp.StatusCode)
	checked := *resp
	checked.Body = http.NoBody
	var body []byte
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); strings.HasSuffix(mt, "json") {
		body, err = io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		resp.Body = io.NopCloser(io.MultiReader(bytes.NewReader(body), errReader{err}))
		if err != nil {
			return "" // a broken transfer: the caller sees the error
		}
		checked.Body = io.NopCloser(bytes.NewReader(body))
	}
	ok, verrs := s.validator.ValidateHttpResponse(req, &checked)
	if ok {
		return ""
	}
	if undocumented(verrs) {
		// A request no route takes: refused, in the error shape.
		if resp.StatusCode < 400 {
			return fmt.Sprintf("%s: the document has no %s %s, yet the server took it", what, req.Method, req.URL.Path)
		}
		if ok, verrs = s.schemas.ValidateSchemaBytes(s.errorBody, body); ok {
			return ""
		}
	}
	return fmt.Sprintf("%s: %v\n%s", what, joinValidation(verrs), clip(body))
}

// undocumented reports whether the document has no operation for the request.
func undocumented(verrs []*liberrors.ValidationError) bool {
	for _, e := range verrs {
		if e.IsPathMissingError() || e.IsOperationMissingError() {
			return true
		}
	}
	return false
}

func joinValidation(verrs []*liberrors.ValidationError) error {
	var out []error
	for _, e := range verrs {
		msg := e.Message
		if e.Reason != "" {
			msg += ": " + e.Reason
		}
		for _, f := range e.SchemaValidationErrors {
			msg += fmt.Sprintf("\n\t%s: %s", f.FieldPath, f.Reason)
		}
		out = append(out, errors.New(msg))
	}
	return errors.Join(out...)
}

func clip(b []byte) string {
	if len(b) > 2000 {
		return string(b[:2000]) + "…"
	}
	return string(b)
}

// errReader ends a re-read body with the error the first read met.
type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	return 0, io.EOF
}

// Operations are the document's operations as http.ServeMux patterns
// ("GET /v1/imports/{id}"), sorted.
func Operations() ([]string, error) {
	doc, err := Document()
	if err != nil {
		return nil, err
	}
	model, err := doc.BuildV3Model()
	if err != nil {
		return nil, err
	}
	var out []string
	for path, item := range model.Model.Paths.PathItems.FromOldest() {
		for method := range item.GetOperations().FromOldest() {
			out = append(out, strings.ToUpper(method)+" "+path)
		}
	}
	slices.Sort(out)
	return out, nil
}
