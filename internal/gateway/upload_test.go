package gateway_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/inlet-dev/inlet/events"
	"github.com/inlet-dev/inlet/internal/blob/local"
	"github.com/inlet-dev/inlet/internal/gateway"
	"github.com/inlet-dev/inlet/internal/httpapi"
	"github.com/inlet-dev/inlet/internal/imports"
	"github.com/inlet-dev/inlet/internal/projector"
	"github.com/inlet-dev/inlet/internal/store/sqlite"
)

// syncResponse is a create response with its prevalidation.
type syncResponse struct {
	events.Import
	Prevalidation *gateway.Prevalidation `json:"prevalidation"`
}

func errorCode(t *testing.T, b []byte) string {
	t.Helper()
	var body httpapi.ErrorBody
	if err := json.Unmarshal(b, &body); err != nil {
		t.Fatalf("not an error body: %s", b)
	}
	return body.Error.Code
}

func TestSyncPrevalidation(t *testing.T) {
	e := newEnv(t, 0)
	var csv strings.Builder
	csv.WriteString("email,name,age\n")
	for i := 1; i <= 30; i++ {
		age := fmt.Sprint(i)
		if i%2 == 0 {
			age = "old" // 15 rows fail coercion
		}
		if i == 3 {
			age = "-1" // and one the schema's minimum
		}
		fmt.Fprintf(&csv, "u%d@x.io,U%d,%s\n", i, i, age)
	}
	rec, b := e.do(t, multipartReq(t,
		part{name: "resource", body: "customers"},
		part{name: "file", file: "c.csv", contentType: "text/csv", body: csv.String()},
		part{name: "upload_mode", body: "sync"},
	))
	if rec.Code != 201 {
		t.Fatalf("sync create: %d %s", rec.Code, b)
	}
	var resp syncResponse
	if err := json.Unmarshal(b, &resp); err != nil {
		t.Fatal(err)
	}
	pv := resp.Prevalidation
	if pv == nil || pv.Total != 30 || pv.Valid != 14 || pv.Failed != 16 || len(pv.Errors) != 16 || pv.Truncated {
		t.Fatalf("prevalidation: %s", b)
	}
	if first := pv.Errors[0]; first.Row != 2 || first.Field != "age" || first.Code == "" || first.Message == "" {
		t.Errorf("first error: %+v", first)
	}
	if pv.Errors[1].Row != 3 || pv.Errors[1].Field != "age" {
		t.Errorf("second error: %+v", pv.Errors[1])
	}
	if resp.Status != events.StatusQueued || resp.UploadMode != "sync" || resp.Links.UploadCSV != resp.Links.Self+"/upload.csv" {
		t.Errorf("import: %s", b)
	}
	// The import goes on through the pipeline as usual.
	if len(e.pub.list) != 1 || e.pub.list[0].ce.ID != "req:"+resp.ID {
		t.Fatalf("published: %+v", e.pub.list)
	}

	// More than 20 failed rows: the first 20, truncated.
	var inputs []string
	for i := 0; i < 25; i++ {
		inputs = append(inputs, fmt.Sprintf(`{"email":"a%d@x.io","age":"x"}`, i))
	}
	inputs = append(inputs, `{"email":"ok@x.io","age":3}`)
	rec, b = e.do(t, jsonReq(`{"resource":"customers","upload_mode":"sync","inputs":[`+strings.Join(inputs, ",")+`]}`))
	resp = syncResponse{}
	json.Unmarshal(b, &resp)
	if rec.Code != 201 || resp.Prevalidation == nil {
		t.Fatalf("sync inputs: %d %s", rec.Code, b)
	}
	pv = resp.Prevalidation
	if pv.Total != 26 || pv.Valid != 1 || pv.Failed != 25 || len(pv.Errors) != gateway.MaxSyncErrors || !pv.Truncated || pv.Errors[19].Row != 20 {
		t.Errorf("truncated prevalidation: %+v", pv)
	}

	// Async creates carry no prevalidation.
	_, b = e.do(t, jsonReq(`{"resource":"customers","inputs":[{"email":"a"}]}`))
	if bytes.Contains(b, []byte(`"prevalidation":`)) {
		t.Errorf("async create has a prevalidation: %s", b)
	}
}

func TestSyncRefusals(t *testing.T) {
	cases := []struct {
		name   string
		req    func(t *testing.T) *http.Request
		status int
		code   string
	}{
		{"unknown column (file-level)", func(t *testing.T) *http.Request {
			return multipartReq(t, part{name: "resource", body: "customers"}, part{name: "upload_mode", body: "sync"},
				part{name: "file", file: "c.csv", body: "email,colour\na@x.io,red\n"})
		}, 422, "invalid_file"},
		{"broken JSON array", func(t *testing.T) *http.Request {
			return multipartReq(t, part{name: "resource", body: "customers"}, part{name: "upload_mode", body: "sync"},
				part{name: "file", file: "c.json", body: `[{"email":"a@x.io"}, {"email": `})
		}, 422, "invalid_file"},
		{"too large, mode before the file", func(t *testing.T) *http.Request {
			return multipartReq(t, part{name: "resource", body: "customers"}, part{name: "upload_mode", body: "sync"},
				part{name: "file", file: "c.csv", body: "email\n" + strings.Repeat("a@x.io\n", 100)})
		}, 413, "sync_too_large"},
		{"too large, mode after the file", func(t *testing.T) *http.Request {
			return multipartReq(t, part{name: "resource", body: "customers"},
				part{name: "file", file: "c.csv", body: "email\n" + strings.Repeat("a@x.io\n", 100)}, part{name: "upload_mode", body: "sync"})
		}, 413, "sync_too_large"},
		{"too large inputs", func(t *testing.T) *http.Request {
			return jsonReq(`{"resource":"customers","upload_mode":"sync","inputs":[` + strings.Repeat(`{"email":"a@x.io"},`, 30) + `{}]}`)
		}, 413, "sync_too_large"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnvWith(t, func(cfg *gateway.Config) { cfg.SyncMaxBytes = 200 })
			rec, b := e.do(t, c.req(t))
			if rec.Code != c.status || errorCode(t, b) != c.code {
				t.Fatalf("got %d %s, want %d %s", rec.Code, b, c.status, c.code)
			}
			if c.code == "sync_too_large" && !strings.Contains(string(b), "async") {
				t.Errorf("the message must point to async: %s", b)
			}
			if len(e.pub.list) != 0 || e.countBlobs(t) != 0 {
				t.Errorf("a refused sync request published %d events and left %d blobs", len(e.pub.list), e.countBlobs(t))
			}
		})
	}
}

// clock is a settable Now.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func TestUploadLinkLocal(t *testing.T) {
	clk := &clock{t: now}
	e := newEnvWith(t, func(c *gateway.Config) { c.Now = clk.now; c.MaxUpload = 1000; c.UploadTTL = time.Hour })
	req := jsonReq(`{"resource":"customers","format":"jsonl","name":"later"}`)
	req.Header.Set(httpapi.OrgHeader, "acme")
	rec, b := e.do(t, req)
	if rec.Code != 201 {
		t.Fatalf("create: %d %s", rec.Code, b)
	}
	var imp events.Import
	json.Unmarshal(b, &imp)
	if imp.Status != events.StatusRequested || imp.ExpiresAt == nil || !imp.ExpiresAt.Equal(now.Add(time.Hour)) ||
		imp.Links.Upload != "/v1/imports/"+imp.ID+"/upload?organization_id=acme" || imp.Links.UploadCSV != "" || imp.Format != "jsonl" {
		t.Fatalf("requested import: %s", b)
	}
	// The request is kept, and published without a source.
	var stored events.ImportRequested
	if err := json.Unmarshal([]byte(e.blob(t, imports.RequestKey(imp.ID))), &stored); err != nil || stored.ID != imp.ID ||
		stored.OrganizationID != "acme" || stored.Source != nil || stored.Name != "later" {
		t.Fatalf("stored request: %+v %v", stored, err)
	}
	if len(e.pub.list) != 1 || e.pub.list[0].ce.ID != "req:"+imp.ID || e.pub.list[0].subject != "imports.acme.customers.requested" {
		t.Fatalf("published: %+v", e.pub.list)
	}
	var ev events.ImportRequested
	json.Unmarshal(e.pub.list[0].ce.Data, &ev)
	if ev.Source != nil || ev.Inputs != nil || ev.ID != imp.ID {
		t.Errorf("requested event: %s", e.pub.list[0].ce.Data)
	}

	put := func(target, org, body string) (*httptest.ResponseRecorder, []byte) {
		r := httptest.NewRequest(http.MethodPut, target, strings.NewReader(body))
		r.Header.Set("Content-Type", "application/x-ndjson")
		if org != "" {
			r.Header.Set(httpapi.OrgHeader, org)
		}
		return e.do(t, r)
	}
	if rec, b := put("/v1/imports/imp_nope/upload", "acme", "{}"); rec.Code != 404 {
		t.Errorf("unknown id: %d %s", rec.Code, b)
	}
	if rec, b := put("/v1/imports/"+imp.ID+"/upload", "other", "{}"); rec.Code != 404 {
		t.Errorf("another organization's import: %d %s", rec.Code, b)
	}
	if rec, b := put(imp.Links.Upload, "", strings.Repeat("x", 1001)); rec.Code != 413 || errorCode(t, b) != "file_too_large" {
		t.Errorf("too large: %d %s", rec.Code, b)
	}
	if rec, b := put(imp.Links.Upload, "", ""); rec.Code != 422 || errorCode(t, b) != "empty_file" {
		t.Errorf("empty: %d %s", rec.Code, b)
	}
	if len(e.pub.list) != 1 {
		t.Fatalf("refused uploads published: %+v", e.pub.list)
	}
	clk.t = now.Add(time.Minute)
	body := `{"email":"a@x.io"}` + "\n"
	rec, b = put(imp.Links.Upload, "", body)
	if rec.Code != 200 {
		t.Fatalf("upload: %d %s", rec.Code, b)
	}
	var got events.Import
	json.Unmarshal(b, &got)
	if got.ID != imp.ID || got.Status != events.StatusQueued || got.File.Size != int64(len(body)) || got.File.Name != "upload.jsonl" ||
		!strings.HasPrefix(got.File.Checksum, "sha256:") || got.Links.UploadJSON != got.Links.Self+"/upload.json" || !got.CreatedAt.Equal(now) {
		t.Errorf("uploaded import: %s", b)
	}
	key := imports.SourceKey(imp.ID, "upload.jsonl")
	if e.blob(t, key) != body {
		t.Errorf("stored upload differs")
	}
	if len(e.pub.list) != 2 {
		t.Fatalf("published %d events, want 2", len(e.pub.list))
	}
	p := e.pub.list[1]
	ev = events.ImportRequested{}
	json.Unmarshal(p.ce.Data, &ev)
	if p.ce.ID != "req:"+imp.ID+":upload" || p.subject != "imports.acme.customers.requested" || ev.Source == nil ||
		ev.Source.Key != key || ev.ID != imp.ID || ev.Format != "jsonl" || ev.Name != "later" {
		t.Errorf("upload event %s: %s", p.ce.ID, p.ce.Data)
	}
	if rec, b := put(imp.Links.Upload, "", body); rec.Code != 409 || errorCode(t, b) != "upload_exists" {
		t.Errorf("second upload: %d %s", rec.Code, b)
	}

	// Past expires_at the link is gone.
	rec, b = e.do(t, jsonReq(`{"resource":"customers"}`))
	json.Unmarshal(b, &imp)
	clk.t = now.Add(2 * time.Hour)
	if rec, b := put(imp.Links.Upload, "", "email\na@x.io\n"); rec.Code != 410 || errorCode(t, b) != "upload_expired" {
		t.Errorf("expired upload: %d %s", rec.Code, b)
	}
}

// presigning is a local store that presigns like S3.
type presigning struct {
	*local.Store
	keys []string
}

func (p *presigning) PresignPut(_ context.Context, key string, expiry time.Duration) (string, error) {
	p.keys = append(p.keys, key)
	return fmt.Sprintf("https://s3.example/bucket/%s?X-Amz-Expires=%d", key, int(expiry.Seconds())), nil
}

func TestUploadLinkPresigned(t *testing.T) {
	var ps *presigning
	e := newEnvWith(t, func(c *gateway.Config) {
		ps = &presigning{Store: c.Blobs.(*local.Store)}
		c.Blobs = ps
		c.UploadTTL = 30 * 24 * time.Hour // cut to S3's 7 days
	})
	rec, b := e.do(t, jsonReq(`{"resource":"customers","format":"json"}`))
	var imp events.Import
	json.Unmarshal(b, &imp)
	key := imports.SourceKey(imp.ID, "upload.json")
	if rec.Code != 201 || imp.Links.Upload != fmt.Sprintf("https://s3.example/bucket/%s?X-Amz-Expires=%d", key, 7*24*3600) ||
		!imp.ExpiresAt.Equal(now.Add(gateway.MaxPresignTTL)) {
		t.Errorf("presigned create: %d %s", rec.Code, b)
	}
}

// With Views, a repeat answers from the projector's view of the import.
func TestIdempotencyKey(t *testing.T) {
	views, err := sqlite.Open(filepath.Join(t.TempDir(), "views.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { views.Close() })
	for _, withViews := range []bool{false, true} {
		t.Run(fmt.Sprintf("views=%v", withViews), func(t *testing.T) {
			e := newEnvWith(t, func(c *gateway.Config) {
				if withViews {
					c.Views = projector.New(views, zerolog.Nop())
				}
			})
			create := func(key string, parts ...part) (*httptest.ResponseRecorder, []byte) {
				r := multipartReq(t, parts...)
				r.Header.Set(gateway.IdempotencyHeader, key)
				r.Header.Set(httpapi.OrgHeader, "acme")
				return e.do(t, r)
			}
			res := part{name: "resource", body: "customers"}
			file := part{name: "file", file: "a.csv", body: "email\na@x.io\n"}
			rec, b := create("k1", res, file, part{name: "upload_mode", body: "sync"})
			if rec.Code != 201 {
				t.Fatalf("first: %d %s", rec.Code, b)
			}
			var first events.Import
			json.Unmarshal(b, &first)
			blobs := e.countBlobs(t)
			if withViews {
				p := projector.New(views, zerolog.Nop())
				if err := p.Apply(context.Background(), e.pub.list[0].subject, e.pub.list[0].ce); err != nil {
					t.Fatal(err)
				}
			}
			// The same request again (other field order, new boundary).
			rec, b = create("k1", part{name: "upload_mode", body: "sync"}, file, res)
			var again syncResponse
			json.Unmarshal(b, &again)
			if rec.Code != 200 || again.ID != first.ID || rec.Header().Get("Location") != first.Links.Self || again.Prevalidation == nil || again.Prevalidation.Total != 1 {
				t.Fatalf("repeat: %d %s", rec.Code, b)
			}
			// Without a view the repeat publishes the request again (the
			// first publish may have failed): the same event id, which
			// JetStream drops.
			for _, p := range e.pub.list {
				if p.ce.ID != "req:"+first.ID {
					t.Errorf("a repeat published %s", p.ce.ID)
				}
			}
			if withViews != (len(e.pub.list) == 1) || e.countBlobs(t) != blobs {
				t.Errorf("a repeat created something: %d events, %d blobs (was %d)", len(e.pub.list), e.countBlobs(t), blobs)
			}
			published := len(e.pub.list)
			// Same key, another request.
			rec, b = create("k1", res, part{name: "file", file: "a.csv", body: "email\nb@x.io\n"}, part{name: "upload_mode", body: "sync"})
			if rec.Code != 422 || errorCode(t, b) != "idempotency_key_reused" {
				t.Errorf("reused key: %d %s", rec.Code, b)
			}
			if len(e.pub.list) != published || e.countBlobs(t) != blobs {
				t.Errorf("a refused key created something: %d events, %d blobs (was %d)", len(e.pub.list), e.countBlobs(t), blobs)
			}
			// Another key creates another import; keys are per organization.
			if rec, b := create("k2", res, file, part{name: "upload_mode", body: "sync"}); rec.Code != 201 || bytes.Contains(b, []byte(first.ID)) {
				t.Errorf("second key: %d %s", rec.Code, b)
			}
		})
	}
}

// A repeat after a failed publish publishes the request again.
func TestIdempotencyAfterPublishFailure(t *testing.T) {
	e := newEnv(t, 0)
	create := func() (*httptest.ResponseRecorder, []byte) {
		r := jsonReq(`{"resource":"customers"}`)
		r.Header.Set(gateway.IdempotencyHeader, "retry-me")
		return e.do(t, r)
	}
	e.pub.err = errors.New("nats: timeout")
	if rec, b := create(); rec.Code != 503 {
		t.Fatalf("failed publish: %d %s", rec.Code, b)
	}
	e.pub.err = nil
	rec, b := create()
	var imp events.Import
	json.Unmarshal(b, &imp)
	if rec.Code != 200 || imp.Status != events.StatusRequested || imp.Links.Upload == "" || imp.ExpiresAt == nil {
		t.Fatalf("repeat: %d %s", rec.Code, b)
	}
	if len(e.pub.list) != 1 || e.pub.list[0].ce.ID != "req:"+imp.ID {
		t.Errorf("republished: %+v", e.pub.list)
	}
}

// Two first requests racing under one Idempotency-Key create one import: the
// record is claimed create-if-absent, and the loser answers as a repeat.
func TestIdempotencyKeyRace(t *testing.T) {
	e := newEnvWith(t, nil)
	const n = 6
	codes := make(chan int, n)
	ids := make(chan string, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := multipartReq(t, part{name: "resource", body: "customers"}, part{name: "file", file: "a.csv", body: "email\na@x.io\n"})
			r.Header.Set(gateway.IdempotencyHeader, "race-1")
			rec, b := e.do(t, r)
			var imp events.Import
			json.Unmarshal(b, &imp)
			codes <- rec.Code
			ids <- imp.ID
		}()
	}
	wg.Wait()
	close(codes)
	close(ids)
	created := 0
	for c := range codes {
		switch c {
		case 201:
			created++
		case 200:
		default:
			t.Fatalf("status %d", c)
		}
	}
	seen := map[string]bool{}
	for id := range ids {
		seen[id] = true
	}
	if created != 1 || len(seen) != 1 {
		t.Fatalf("%d requests created an import, %d distinct ids: want 1 and 1", created, len(seen))
	}
	// A repeat may publish the winner's event again (in case its publish was
	// lost); JetStream drops it by id. One event id means one import.
	e.pub.mu.Lock()
	eventIDs := map[string]bool{}
	for _, p := range e.pub.list {
		eventIDs[p.ce.ID] = true
	}
	e.pub.mu.Unlock()
	if len(eventIDs) != 1 {
		t.Fatalf("%d distinct import-requested events published, want 1", len(eventIDs))
	}
}
