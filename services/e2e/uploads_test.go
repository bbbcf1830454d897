package e2e

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/inlet-dev/inlet/events"
	"github.com/inlet-dev/inlet/pkg/client"
)

// TestUploadPaths: upload_mode sync answers the prevalidation in the 201;
// options alone give a presigned MinIO URL, and PUTting the file there
// starts the import by itself (bucket notification → NATS); an
// Idempotency-Key repeat creates nothing; upload.csv and upload.json give
// the file back.
func TestUploadPaths(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	c := NewCluster(t, Options{BatchSize: 2})
	const org = "acme"
	ctx := context.Background()

	// upload_mode sync.
	syncFile := "code,name,employees\nS1,One,1\nS2,,2\nS3,Three,x\nS4,Four,4\n"
	created := c.Created(org, client.CreateRequest{Options: events.Options{Resource: "companies", UploadMode: "sync", SkipErrors: true},
		File: &client.File{Name: "sync.csv", Body: strings.NewReader(syncFile)}})
	if p := created.Prevalidation; p == nil {
		t.Errorf("upload_mode sync: no prevalidation in %+v", created)
	} else {
		if p.Total != 4 || p.Valid != 2 || p.Failed != 2 || p.Truncated {
			t.Errorf("prevalidation counts: %+v, want total 4 valid 2 failed 2", *p)
		}
		var got []string
		for _, e := range p.Errors {
			got = append(got, e.Code+"@"+e.Field)
			if e.Message == "" {
				t.Errorf("prevalidation error of row %d has no message", e.Row)
			}
		}
		if len(p.Errors) != 2 || p.Errors[0].Row != 2 || p.Errors[1].Row != 3 ||
			strings.Join(got, " ") != "schema.required@name schema.type@employees" {
			t.Errorf("prevalidation errors: %+v", p.Errors)
		}
	}
	if created.UploadMode != "sync" {
		t.Errorf("upload_mode echoed as %q", created.UploadMode)
	}
	imp := c.WaitTerminal(created.ID)
	checkEnded(t, "sync import", imp, events.StatusCompleted, events.Stats{Total: 4, Processed: 4, Created: 2, Failed: 2})

	// Options alone → a presigned PUT URL on MinIO → the upload starts it.
	file := []byte("code,name\nP1,Presigned One\nP2,Presigned Two\nP3,Presigned Three\n")
	req := c.Created(org, client.CreateRequest{Options: events.Options{Resource: "companies", Format: "csv", Name: "later"}})
	if req.Status != events.StatusRequested || req.ExpiresAt == nil {
		t.Errorf("options alone: status %s expires_at %v, want requested with expires_at", req.Status, req.ExpiresAt)
	}
	u, err := url.Parse(req.Links.Upload)
	if err != nil || u.Host != c.MinIO.Endpoint || u.Query().Get("X-Amz-Signature") == "" || !strings.HasPrefix(u.Path, "/"+Bucket+"/imports/"+req.ID+"/") {
		t.Fatalf("links.upload %q is not a presigned URL of MinIO %s for the import", req.Links.Upload, c.MinIO.Endpoint)
	}
	c.WaitStatus(req.ID, events.StatusRequested, 30*time.Second) // the projector has it, waiting for its file
	if err := c.Client(org).Upload(ctx, req.Import, client.File{Body: bytes.NewReader(file)}); err != nil {
		t.Fatalf("PUT to the presigned URL: %v", err)
	}
	up := c.WaitTerminalFor(req.ID, time.Minute)
	// It was MinIO's bucket notification (through NATS) that started it.
	notified := false
	for _, l := range c.Logs("prevalidation", 0) {
		if l.ImportID == req.ID && strings.HasPrefix(l.Message, "uploads: file arrived") {
			notified = true
		}
	}
	if !notified {
		t.Errorf("prevalidation never logged the upload notification of %s", req.ID)
	}
	checkEnded(t, "uploaded import", up, events.StatusCompleted, events.Stats{Total: 3, Processed: 3, Created: 3})
	if up.Name != "later" || up.File.Size != int64(len(file)) || up.File.Checksum != sha256Hex(file) {
		t.Errorf("uploaded import: name %q file %+v, want size %d checksum %s", up.Name, up.File, len(file), sha256Hex(file))
	}

	// Idempotency-Key: the repeat answers the same import and creates nothing.
	once := "code,name\nI1,Idem\n"
	idem := func(content string) client.CreateRequest {
		return client.CreateRequest{Options: events.Options{Resource: "companies"}, IdempotencyKey: "e2e-once",
			File: &client.File{Name: "i.csv", Body: strings.NewReader(content)}}
	}
	first := c.Created(org, idem(once))
	firstDone := c.WaitTerminal(first.ID)
	before := c.listImports(org, client.Filters{Limit: 100})
	repeat, err := c.Create(org, idem(once))
	if err != nil || !repeat.Repeated || repeat.ID != first.ID {
		t.Errorf("repeat: %v, repeated %v, id %s, want 200 with %s", err, repeat.Repeated, repeat.ID, first.ID)
	}
	if repeat.Status != firstDone.Status {
		t.Errorf("repeat shows status %s, the import is %s", repeat.Status, firstDone.Status)
	}
	_, err = c.Create(org, idem("code,name\nI2,Other\n"))
	if e := (*client.Error)(nil); !errors.As(err, &e) || e.Status != http.StatusUnprocessableEntity || e.Code != "idempotency_key_reused" {
		t.Errorf("same key, other file: %v, want 422 idempotency_key_reused", err)
	}
	time.Sleep(time.Second) // anything the repeat would have started has reached the views
	afterList := c.listImports(org, client.Filters{Limit: 100})
	if len(afterList.Data) != len(before.Data) {
		t.Errorf("imports before the repeat %v, after %v", ids(before.Data), ids(afterList.Data))
	}
	if got := fieldSet(t, c, org, "live", "companies", "code"); keysOf(got) != "i1,p1,p2,p3,s1,s4" {
		t.Errorf("companies: %s", keysOf(got))
	}

	// The key is the organization's: the same key elsewhere is a new import.
	elsewhere := c.Created("other", idem(once))
	if elsewhere.ID == first.ID {
		t.Errorf("the same Idempotency-Key in another organization answered acme's import")
	}
	checkEnded(t, "other's import under the same key", c.WaitTerminal(elsewhere.ID), events.StatusCompleted, events.Stats{Total: 1, Processed: 1, Created: 1})

	// A repeated upload-link request answers the same import and link.
	link := client.CreateRequest{Options: events.Options{Resource: "companies", Format: "csv"}, IdempotencyKey: "e2e-link"}
	l1 := c.Created(org, link)
	l2, err := c.Create(org, link)
	if err != nil || !l2.Repeated || l2.ID != l1.ID || l2.Links.Upload != l1.Links.Upload || l2.Status != events.StatusRequested {
		t.Errorf("repeated upload-link request: %v repeated %v %s %s %q, want 200 %s requested %q", err, l2.Repeated, l2.ID, l2.Status, l2.Links.Upload, l1.ID, l1.Links.Upload)
	}

	// The original payload, converted.
	csvResp := c.Read(org, "/v1/imports/"+up.ID+"/upload.csv", nil)
	if csvResp.Status != http.StatusOK || string(csvResp.Body) != string(file) {
		t.Errorf("upload.csv: %d\n got %q\nwant %q", csvResp.Status, csvResp.Body, file)
	}
	jsonResp := c.Read(org, "/v1/imports/"+imp.ID+"/upload.json", nil)
	var records []map[string]any
	jsonResp.JSON(t, &records)
	want := `[{"code":"S1","employees":"1","name":"One"},{"code":"S2","employees":"2","name":""},{"code":"S3","employees":"x","name":"Three"},{"code":"S4","employees":"4","name":"Four"}]`
	if jsonResp.Status != http.StatusOK || canon(records) != want {
		t.Errorf("upload.json: %d\n got %s\nwant %s", jsonResp.Status, canon(records), want)
	}
	if imp.Links.UploadCSV == "" || imp.Links.UploadJSON == "" {
		t.Errorf("links: %+v", imp.Links)
	}
}
