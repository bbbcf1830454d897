package contract_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"reflect"
	"slices"
	"sort"
	"testing"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"

	"github.com/inlet-dev/inlet/events"
	"github.com/inlet-dev/inlet/internal/broker"
	"github.com/inlet-dev/inlet/internal/openapi"
	"github.com/inlet-dev/inlet/internal/projector"
	"github.com/inlet-dev/inlet/internal/store"
	"github.com/inlet-dev/inlet/pkg/client"
)

// keysOf is the sorted member names of a JSON object.
func keysOf(t *testing.T, raw []byte) []string {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("not a JSON object (%v): %s", err, raw)
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// sameShape asserts that the server's JSON object raw and the client's type
// (v, as the client decoded it) have the same members: the server sends
// nothing the client's type lacks (a strict decode), and the client's type
// expects nothing the server leaves out.
func sameShape(t *testing.T, what string, raw []byte, v any) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(reflect.New(reflect.TypeOf(v)).Interface()); err != nil {
		t.Errorf("%s: the server sends what the client's %T lacks: %v\n%s", what, v, err, raw)
	}
	enc, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := keysOf(t, raw), keysOf(t, enc); !slices.Equal(got, want) {
		t.Errorf("%s: the server sends members %v, the client's %T has %v", what, got, v, want)
	}
}

func get(t *testing.T, url, org string) []byte {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set(events.OrgHeader, org)
	resp, err := openapi.Client(t, nil).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %v %s", url, resp.StatusCode, err, b)
	}
	return b
}

// multipartBody is a create body built by hand, not by the client.
func multipartBody(t *testing.T, fields map[string]string, filename, content string) (string, *bytes.Buffer) {
	t.Helper()
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	for k, v := range fields {
		if err := mw.WriteField(k, v); err != nil {
			t.Fatal(err)
		}
	}
	fw, err := mw.CreateFormFile("file", filename)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.WriteString(fw, content)
	if err := mw.Close(); err != nil {
		t.Fatal(err)
	}
	return mw.FormDataContentType(), &b
}

// newClient is the Go client with every answer it gets held to the API
// description (the test fails at its end on any that disagrees).
func newClient(t *testing.T, nc *nats.Conn, baseURL string) *client.Client {
	t.Helper()
	c := client.New(nc, baseURL)
	c.HTTP = openapi.Client(t, nil)
	return c
}

// runProjector applies the events of b to views through the router, as the
// projector role does, until the returned stop is called.
func runProjector(t *testing.T, ctx context.Context, b *broker.Broker, views store.Store) (stop func()) {
	t.Helper()
	router, err := message.NewRouter(message.RouterConfig{}, watermill.NopLogger{})
	if err != nil {
		t.Fatal(err)
	}
	sub, err := b.Subscriber(broker.SubscribeOptions{Subject: events.AllSubjects, Durable: projector.Durable})
	if err != nil {
		t.Fatal(err)
	}
	router.AddConsumerHandler("projector", events.AllSubjects, sub, projector.New(views, zerolog.Nop()).Handler())
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- router.Run(runCtx) }()
	<-router.Running()
	return func() {
		cancel()
		<-done
	}
}
