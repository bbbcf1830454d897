package uploads_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/rs/zerolog"

	"github.com/inlet-dev/inlet/events"
	"github.com/inlet-dev/inlet/internal/blob"
	"github.com/inlet-dev/inlet/internal/blob/local"
	"github.com/inlet-dev/inlet/internal/blob/s3"
	"github.com/inlet-dev/inlet/internal/broker"
	"github.com/inlet-dev/inlet/internal/gateway"
	"github.com/inlet-dev/inlet/internal/imports"
	"github.com/inlet-dev/inlet/internal/resources"
	"github.com/inlet-dev/inlet/internal/testenv"
	"github.com/inlet-dev/inlet/internal/topology"
	"github.com/inlet-dev/inlet/internal/uploads"
)

func TestImportID(t *testing.T) {
	for key, want := range map[string]string{
		"imports/imp_1/source/upload.csv":    "imp_1",
		"imports/imp_1/source/upload.jsonl":  "imp_1",
		"imports/imp_1/source/inputs.jsonl":  "",
		"imports/imp_1/source/upload":        "",
		"imports/imp_1/prevalidation/x.csv":  "",
		"imports/imp_1/source/a/upload.csv":  "",
		"other/imp_1/source/upload.csv":      "",
		"imports/imp.1/source/upload.csv":    "",
		"imports//source/upload.csv":         "",
		"imports/imp_1/source/upload.csv/x":  "",
		"imports/imp_1/source/upload.x.json": "imp_1",
	} {
		id, ok := imports.UploadImportID(key)
		if id != want || ok != (want != "") {
			t.Errorf("ImportID(%q) = %q, %v; want %q", key, id, ok, want)
		}
	}
	if k := imports.UploadKey("imp_1", "xlsx"); k != "imports/imp_1/source/upload.xlsx" {
		t.Errorf("Key = %q", k)
	}
}

type recorder struct {
	mu   sync.Mutex
	subj []string
	list []events.CloudEvent
}

func (r *recorder) PublishEvent(_ context.Context, subject string, ce events.CloudEvent) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.subj = append(r.subj, subject)
	r.list = append(r.list, ce)
	return nil
}

func notification(bucket, key string) []byte {
	b, _ := json.Marshal(map[string]any{
		"EventName": "s3:ObjectCreated:Put",
		"Key":       bucket + "/" + key,
		"Records": []any{map[string]any{
			"eventName": "s3:ObjectCreated:Put",
			"s3": map[string]any{
				"bucket": map[string]any{"name": bucket},
				"object": map[string]any{"key": strings.ReplaceAll(key, "/", "%2F"), "size": 12, "contentType": "text/csv"},
			},
		}},
	})
	return b
}

func putJSON(t *testing.T, blobs blob.Store, key string, v any) {
	t.Helper()
	b, _ := json.Marshal(v)
	if err := blobs.Put(context.Background(), key, bytes.NewReader(b), int64(len(b))); err != nil {
		t.Fatal(err)
	}
}

func TestHandler(t *testing.T) {
	blobs, err := local.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	pub := &recorder{}
	h := uploads.Handler(blobs, pub, zerolog.Nop())
	req := events.ImportRequested{Options: events.Options{ID: "imp_1", OrganizationID: "acme", Resource: "customers", Format: "csv", Name: "n"}}
	putJSON(t, blobs, imports.RequestKey("imp_1"), req)

	for _, body := range [][]byte{
		[]byte("not json"),
		notification("inlet", "imports/imp_1/prevalidation/out/000000.ndjson"), // not an upload
		notification("inlet", "imports/imp_2/source/upload.csv"),               // no request
	} {
		if err := h(message.NewMessage("m", body)); err != nil {
			t.Errorf("%s: %v", body, err)
		}
	}
	if len(pub.list) != 0 {
		t.Fatalf("published for a foreign object: %+v", pub.list)
	}
	if err := h(message.NewMessage("m", notification("inlet", "imports/imp_1/source/upload.csv"))); err != nil {
		t.Fatal(err)
	}
	if len(pub.list) != 1 || pub.subj[0] != "imports.acme.customers.requested" || pub.list[0].ID != "req:imp_1:upload" {
		t.Fatalf("published: %v %+v", pub.subj, pub.list)
	}
	var ev events.ImportRequested
	json.Unmarshal(pub.list[0].Data, &ev)
	if ev.ID != "imp_1" || ev.Name != "n" || ev.Source == nil || *ev.Source != (events.Source{Bucket: "inlet", Key: "imports/imp_1/source/upload.csv", Name: "upload.csv", ContentType: "text/csv"}) {
		t.Errorf("event: %s", pub.list[0].Data)
	}
	// Once intake has started the import, a late repeat publishes nothing.
	putJSON(t, blobs, imports.ImportKey("imp_1"), map[string]string{"id": "imp_1"})
	if err := h(message.NewMessage("m", notification("inlet", "imports/imp_1/source/upload.csv"))); err != nil || len(pub.list) != 1 {
		t.Errorf("repeat after start: %v, %d events", err, len(pub.list))
	}
}

// End to end: an import created from options alone on MinIO gets a presigned
// PUT URL; uploading to it makes MinIO publish a bucket notification to
// JetStream, and the handler publishes the import-requested event with the
// source.
func TestPresignedUploadStartsImport(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	log := zerolog.Nop()
	// The stream holding the subject must exist before MinIO starts: with
	// JetStream on it publishes with an ack.
	b, err := broker.Connect(ctx, broker.Config{Listen: "127.0.0.1:-1", StoreDir: t.TempDir(), Name: "uploads-test"}, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	natsAddr := strings.TrimPrefix(b.ClientURL(), "nats://")
	m := testenv.StartMinIOWith(t, map[string]string{
		"MINIO_NOTIFY_NATS_ENABLE_INLET":    "on",
		"MINIO_NOTIFY_NATS_ADDRESS_INLET":   natsAddr,
		"MINIO_NOTIFY_NATS_SUBJECT_INLET":   topology.UploadsSubject,
		"MINIO_NOTIFY_NATS_JETSTREAM_INLET": "on",
	})
	store, err := s3.New(ctx, s3.Config{Endpoint: m.Endpoint, AccessKey: m.AccessKey, SecretKey: m.SecretKey, Bucket: "inlet-uploads"})
	if err != nil {
		t.Fatal(err)
	}
	if err := store.EnableUploadNotifications(ctx, "arn:minio:sqs::INLET:nats"); err != nil {
		t.Fatal(err)
	}
	// Twice: a restart re-applies the rules without duplicating them.
	if err := store.EnableUploadNotifications(ctx, "arn:minio:sqs::INLET:nats"); err != nil {
		t.Fatal(err)
	}

	reg, err := resources.Load(map[string][]byte{"customers.json": []byte(`{"name":"customers","key":["email"],
		"schema":{"type":"object","properties":{"email":{"type":"string"}}}}`)})
	if err != nil {
		t.Fatal(err)
	}
	g := gateway.New(gateway.Config{Blobs: store, Publisher: b, Registry: reg, Log: log})

	// Consume the notifications with the handler, and watch the requested events.
	sub, err := b.Subscriber(broker.SubscribeOptions{Subject: topology.UploadsSubject, Durable: "uploads-test-v1"})
	if err != nil {
		t.Fatal(err)
	}
	notes, err := sub.Subscribe(ctx, topology.UploadsSubject)
	if err != nil {
		t.Fatal(err)
	}
	handler := uploads.Handler(store, b, log)
	handled := make(chan string, 16)
	go func() {
		for msg := range notes {
			if err := handler(msg); err != nil {
				t.Errorf("handler: %v", err)
				msg.Nack()
				continue
			}
			msg.Ack()
			handled <- string(msg.Payload)
		}
	}()
	reqSubject := events.Subject("acme", "customers", events.EventRequested)
	watch, err := b.Subscriber(broker.SubscribeOptions{Subject: reqSubject, Durable: "test-requested"})
	if err != nil {
		t.Fatal(err)
	}
	requested, err := watch.Subscribe(ctx, reqSubject)
	if err != nil {
		t.Fatal(err)
	}

	r := httptest.NewRequest(http.MethodPost, "/v1/imports", strings.NewReader(`{"resource":"customers","organization_id":"acme"}`))
	r.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	g.ServeHTTP(rec, r)
	var imp events.Import
	json.Unmarshal(rec.Body.Bytes(), &imp)
	if rec.Code != 201 || imp.Status != events.StatusRequested || !strings.HasPrefix(imp.Links.Upload, "http://"+m.Endpoint+"/inlet-uploads/imports/"+imp.ID+"/source/upload.csv?") {
		t.Fatalf("create: %d %s", rec.Code, rec.Body)
	}

	// The first requested event has no source.
	ev := nextRequested(t, ctx, requested)
	if ev.id != "req:"+imp.ID || ev.req.Source != nil {
		t.Fatalf("first requested event: %s %+v", ev.id, ev.req)
	}

	// The pipeline's own objects under imports/ notify nothing: the rules
	// match upload files only.
	if err := store.Put(ctx, imports.StatsKey(imp.ID, "prevalidation", 0), strings.NewReader("{}"), 2); err != nil {
		t.Fatal(err)
	}
	csv := "email\na@x.io\n"
	put, err := http.NewRequestWithContext(ctx, http.MethodPut, imp.Links.Upload, strings.NewReader(csv))
	if err != nil {
		t.Fatal(err)
	}
	put.Header.Set("Content-Type", "text/csv")
	resp, err := http.DefaultClient.Do(put)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("presigned PUT: %s", resp.Status)
	}
	select {
	case n := <-handled:
		if !strings.Contains(n, "upload.csv") || strings.Contains(n, "stats") {
			t.Errorf("notification: %s", n)
		}
	case <-ctx.Done():
		t.Fatal("no bucket notification on " + topology.UploadsSubject)
	}
	ev = nextRequested(t, ctx, requested)
	want := events.Source{Bucket: "inlet-uploads", Key: imports.SourceKey(imp.ID, "upload.csv"), Name: "upload.csv", ContentType: "text/csv"}
	if ev.id != "req:"+imp.ID+":upload" || ev.req.ID != imp.ID || ev.req.Source == nil || *ev.req.Source != want {
		t.Fatalf("upload requested event: %s %+v", ev.id, ev.req)
	}
	rc, err := store.Get(ctx, want.Key)
	if err != nil {
		t.Fatal(err)
	}
	var got bytes.Buffer
	got.ReadFrom(rc)
	rc.Close()
	if got.String() != csv {
		t.Errorf("uploaded file = %q", got.String())
	}
}

type requestedEvent struct {
	id  string
	req events.ImportRequested
}

func nextRequested(t *testing.T, ctx context.Context, ch <-chan *message.Message) requestedEvent {
	t.Helper()
	select {
	case msg := <-ch:
		msg.Ack()
		ce, err := events.Decode(msg.Payload)
		if err != nil {
			t.Fatal(err)
		}
		var req events.ImportRequested
		if err := json.Unmarshal(ce.Data, &req); err != nil {
			t.Fatal(err)
		}
		return requestedEvent{id: ce.ID, req: req}
	case <-ctx.Done():
		t.Fatal("no import-requested event")
	}
	return requestedEvent{}
}
