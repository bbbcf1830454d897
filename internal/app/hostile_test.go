package app

import (
	"archive/zip"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/xuri/excelize/v2"
	"golang.org/x/text/encoding/unicode"

	"github.com/inlet-dev/inlet/events"
	"github.com/inlet-dev/inlet/internal/imports"
	"github.com/inlet-dev/inlet/internal/textlimit"
)

// hostile is one input a user (or an attacker) may send, and how the import
// must end: completed with exact stats, or ended with a specific reason.
type hostile struct {
	name   string
	opts   events.Options // Resource defaults to customers, format to csv
	file   string         // the file's name (format inferred from it when opts.Format is empty)
	body   []byte
	status events.Status
	reason string       // a part of the reason (for any status but completed)
	stats  events.Stats // for completed: Total, Created, Skipped, Failed are compared
}

func utf16le(s string) []byte {
	b, _ := unicode.UTF16(unicode.LittleEndian, unicode.UseBOM).NewEncoder().Bytes([]byte(s))
	return b
}

func utf16be(s string) []byte {
	b, _ := unicode.UTF16(unicode.BigEndian, unicode.UseBOM).NewEncoder().Bytes([]byte(s))
	return b
}

func gzipped(s string) []byte {
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	_, _ = w.Write([]byte(s))
	_ = w.Close()
	return b.Bytes()
}

func zipped(name, s string) []byte {
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	w, _ := zw.Create(name)
	_, _ = w.Write([]byte(s))
	_ = zw.Close()
	return b.Bytes()
}

func xlsxOf(rows ...[]any) []byte {
	f := excelize.NewFile()
	defer f.Close()
	for i, r := range rows {
		_ = f.SetSheetRow("Sheet1", fmt.Sprintf("A%d", i+1), &r)
	}
	var b bytes.Buffer
	_ = f.Write(&b)
	return b.Bytes()
}

func created(n int64) events.Stats { return events.Stats{Total: n, Created: n} }

func hostileFiles() []hostile {
	ok := "email,name\na@x.io,Ann\n"
	wide := make([]string, 100000)
	for i := range wide {
		wide[i] = fmt.Sprintf("c%d", i)
	}
	deep := strings.Repeat("[", 20000) + strings.Repeat("]", 20000)
	big := strings.Repeat("x", 1<<20)
	xl := xlsxOf([]any{"email", "name", "age"}, []any{"a@x.io", "Ann", 30}, []any{"b@x.io", "=HYPERLINK(\"http://evil\")", "x"})
	return []hostile{
		{name: "empty file", body: nil, status: events.StatusFailed, reason: "header"},
		{name: "only blank lines", body: []byte("\n\n\n"), status: events.StatusFailed, reason: "header"},
		{name: "header only", body: []byte("email,name\n"), stats: created(0)},
		{name: "utf-8 bom crlf", body: []byte("\xEF\xBB\xBFemail,name\r\na@x.io,Ann\r\n"), stats: created(1)},
		{name: "utf-16le bom", body: utf16le(ok), stats: created(1)},
		{name: "utf-16be bom", body: utf16be(ok), stats: created(1)},
		{name: "windows-1252", body: []byte("email,name\na@x.io,Ren\xe9e\n"), stats: created(1)},
		{name: "cr line endings", body: []byte("email,name\ra@x.io,Ann\rb@x.io,Bob\r"), stats: created(2)},
		// The quote swallows the rest of the file into one row, which fails.
		{name: "unterminated quote", body: []byte("email,name\na@x.io,\"Ann\nb@x.io,Bob\n"), status: events.StatusInterrupted, reason: "1 of 1 rows failed"},
		{name: "nul bytes in a cell", body: []byte("email,name\na@x.io,A\x00nn\n"), stats: created(1)},
		{name: "random binary", body: []byte("\x00\x01\x02\xff\xfe\x80\x81email\x00,\x9c\n\x00\x00"), status: events.StatusFailed},
		// What a file is comes from its bytes: gzip is read through, a
		// workbook is read as one.
		{name: "gzip declared csv", body: gzipped(ok), stats: created(1)},
		{name: "xlsx declared csv", body: xl, status: events.StatusInterrupted, reason: "1 of 2 rows failed"},
		{name: "zip declared csv", body: zipped("customers.csv", ok), status: events.StatusFailed, reason: "file.type: the file is a ZIP archive, not CSV/JSON/XLSX"},
		{name: "csv declared xlsx", file: "f.xlsx", body: []byte(ok), status: events.StatusFailed, reason: "parse.xlsx"},
		{name: "truncated xlsx", file: "f.xlsx", body: xl[:len(xl)/2], status: events.StatusFailed, reason: "parse.xlsx"},
		{name: "xlsx formula and bad type", file: "f.xlsx", opts: events.Options{SkipErrors: true}, body: xl,
			stats: events.Stats{Total: 2, Created: 1, Failed: 1}},
		{name: "unknown xlsx sheet", file: "f.xlsx", opts: events.Options{Sheet: "Nope"}, body: xl, status: events.StatusFailed, reason: "Nope"},
		{name: "1 MB cell", body: []byte("email,name\na@x.io," + big + "\n"), stats: created(1)},
		{name: "1 MB header name", body: []byte("email,name," + big + "\na@x.io,Ann,x\n"), status: events.StatusFailed, reason: "mapping"},
		{name: "100k columns", body: []byte("email,name," + strings.Join(wide, ",") + "\na@x.io,Ann\n"), status: events.StatusFailed, reason: "mapping"},
		{name: "duplicate header", body: []byte("email,email,name\na,b,c\n"), status: events.StatusFailed, reason: "duplicate column"},
		{name: "empty header names", body: []byte("email,,name,\na@x.io,x,Ann,y\n"), stats: created(1)},
		{name: "unknown column", body: []byte("email,name,shoe\na@x.io,Ann,42\n"), status: events.StatusFailed, reason: "shoe"},
		{name: "more cells than header", opts: events.Options{SkipErrors: true}, body: []byte("email,name\na@x.io,Ann,extra\nb@x.io,Bob\n"),
			stats: events.Stats{Total: 2, Created: 1, Failed: 1}},
		{name: "fewer cells than header", opts: events.Options{SkipErrors: true}, body: []byte("email,name,age\na@x.io,Ann\nb@x.io,Bob,3\n"),
			stats: events.Stats{Total: 2, Created: 1, Failed: 1}},
		{name: "formula injection", body: []byte("email,name\na@x.io,=cmd|' /C calc'!A0\nb@x.io,+SUM(1)\nc@x.io,-1+1\nd@x.io,@x\n"), stats: created(4)},
		{name: "number beyond a double", opts: events.Options{SkipErrors: true}, body: []byte("email,name,age\na@x.io,Ann,1e400\n"),
			stats: events.Stats{Total: 1, Failed: 1}},
		// Within a double's range: stored with its digits exact.
		{name: "huge integer", body: []byte("email,name,age\na@x.io,Ann,99999999999999999999999\n"), stats: created(1)},
		{name: "emails no mail system takes", opts: events.Options{SkipErrors: true},
			body: []byte("email,name\n@x.io,A\na@1.2.3.4,B\na..b@x.io,C\n\"\"@x.io,D\nok@x.io,E\n"), stats: events.Stats{Total: 5, Created: 1, Failed: 4}},
		{name: "impossible dates", opts: events.Options{SkipErrors: true}, body: []byte("email,name,signed_up\na@x.io,A,2023-02-29\nb@x.io,B,2024-13-01\nc@x.io,C,2024-02-29\n"),
			stats: events.Stats{Total: 3, Created: 1, Failed: 2}},
		{name: "booleans spelled every way", body: []byte("email,name,vip\na@x.io,A,yes\nb@x.io,B,NO\nc@x.io,C,1\nd@x.io,D,False\n"), stats: created(4)},
		{name: "bad boolean", opts: events.Options{SkipErrors: true}, body: []byte("email,name,vip\na@x.io,A,perhaps\n"), stats: events.Stats{Total: 1, Failed: 1}},
		{name: "duplicate keys", body: []byte("email,name\na@x.io,A\na@x.io,B\nA@X.IO,C\n"), stats: events.Stats{Total: 3, Skipped: 3}},
		{name: "error threshold", body: []byte("email,name\nbad,A\nworse,B\nok@x.io,C\n"), status: events.StatusInterrupted, reason: "error threshold"},
		{name: "json object not array", file: "f.json", body: []byte(`{"email":"a@x.io","name":"Ann"}`), status: events.StatusFailed, reason: "parse.json"},
		{name: "json array of scalars", file: "f.json", opts: events.Options{SkipErrors: true}, body: []byte(`[1,"x",null]`), stats: events.Stats{Total: 3, Failed: 3}},
		{name: "json deep nesting", file: "f.json", body: []byte(deep), status: events.StatusFailed, reason: "parse.json"},
		{name: "json truncated", file: "f.json", body: []byte(`[{"email":"a@x.io","name":"Ann"},{"email":`), status: events.StatusFailed, reason: "parse.json"},
		{name: "json nested values", file: "f.json", opts: events.Options{SkipErrors: true}, body: []byte(`[{"email":"a@x.io","name":{"first":"A"}}]`),
			stats: events.Stats{Total: 1, Failed: 1}},
		{name: "json number beyond a double", file: "f.json", opts: events.Options{SkipErrors: true}, body: []byte(`[{"email":"a@x.io","name":"A","age":1e400}]`),
			stats: events.Stats{Total: 1, Failed: 1}},
		// RFC 8259 §8.1: JSON exchanged between systems is UTF-8.
		{name: "json invalid utf-8", file: "f.json", body: []byte("[{\"email\":\"a@x.io\",\"name\":\"A\xff\"}]"), status: events.StatusFailed, reason: "not valid UTF-8"},
		{name: "jsonl bad line", file: "f.jsonl", opts: events.Options{SkipErrors: true}, body: []byte("{\"email\":\"a@x.io\",\"name\":\"A\"}\nnot json\n{\"email\":\"b@x.io\",\"name\":\"B\"}\n"),
			stats: events.Stats{Total: 3, Created: 2, Failed: 1}},
		{name: "jsonl blank lines", file: "f.jsonl", body: []byte("\n\n{\"email\":\"a@x.io\",\"name\":\"A\"}\n\n"), stats: created(1)},
		{name: "jsonl nul escape", file: "f.jsonl", body: []byte("{\"email\":\"a@x.io\",\"name\":\"A\\u0000B\"}\n"), stats: created(1)},
	}
}

func hostileOptions() []hostile {
	ok := []byte("email,name\na@x.io,Ann\n")
	two, nan := 2.0, -0.5
	long := strings.Repeat("n", 600)
	past := time.Now().Add(-time.Hour)
	parent := "p1"
	return []hostile{
		{name: "mode", opts: events.Options{Mode: "prod"}, body: ok, status: events.StatusFailed, reason: "mode"},
		{name: "format", opts: events.Options{Format: "pdf"}, body: ok, status: events.StatusFailed, reason: "format"},
		{name: "action", opts: events.Options{Action: "truncate"}, body: ok, status: events.StatusFailed, reason: "action"},
		{name: "duplicate_handling", opts: events.Options{DuplicateHandling: "keep_all"}, body: ok, status: events.StatusFailed, reason: "duplicate_handling"},
		{name: "upload_mode", opts: events.Options{UploadMode: "later"}, body: ok, status: events.StatusFailed, reason: "upload_mode"},
		{name: "error_threshold above 1", opts: events.Options{ErrorThreshold: &two}, body: ok, status: events.StatusFailed, reason: "error_threshold"},
		{name: "error_threshold below 0", opts: events.Options{ErrorThreshold: &nan}, body: ok, status: events.StatusFailed, reason: "error_threshold"},
		{name: "delimiter", opts: events.Options{Delimiter: "||"}, body: ok, status: events.StatusFailed, reason: "delimiter"},
		{name: "name too long", opts: events.Options{Name: long}, body: ok, status: events.StatusFailed, reason: "name"},
		{name: "reference too long", opts: events.Options{Reference: long}, body: ok, status: events.StatusFailed, reason: "reference"},
		{name: "metadata too big", opts: events.Options{Metadata: map[string]any{"x": strings.Repeat("m", 20000)}}, body: ok, status: events.StatusFailed, reason: "metadata"},
		{name: "column_mapping to no field", opts: events.Options{ColumnMapping: map[string]string{"shoe": "name"}}, body: ok, status: events.StatusFailed, reason: "column_mapping"},
		{name: "column_mapping to no column", opts: events.Options{ColumnMapping: map[string]string{"name": "nope"}}, body: ok, status: events.StatusFailed, reason: "column_mapping"},
		{name: "deadline passed", opts: events.Options{Deadline: &past}, body: ok, status: events.StatusFailed, reason: "deadline"},
		{name: "parent on a resource without one", opts: events.Options{ParentResourceID: &parent}, body: ok, status: events.StatusFailed, reason: "parent_resource_id"},
		{name: "unknown resource", opts: events.Options{Resource: "unicorns"}, body: ok, status: events.StatusFailed, reason: "unicorns"},
	}
}

// TestHostileInputs sends every hostile file and every out-of-range option
// as an import request, checks each ends as it must with a specific,
// bounded reason, and that the server still imports a plain file after all.
func TestHostileInputs(t *testing.T) {
	a := startEmbedded(t)
	cases := append(hostileFiles(), hostileOptions()...)
	for i, h := range cases {
		t.Run(h.name, func(t *testing.T) {
			opts := h.opts
			opts.OrganizationID = fmt.Sprintf("hostile%d", i)
			if opts.Resource == "" {
				opts.Resource = "customers"
			}
			file := h.file
			if file == "" {
				file = "f.csv"
			}
			if opts.Format == "" {
				opts.Format = events.Format(strings.TrimPrefix(file[strings.LastIndexByte(file, '.'):], "."))
			}
			imp := runImport(t, a, opts, file, string(h.body))
			want := h.status
			if want == "" {
				want = events.StatusCompleted
			}
			reason := ""
			if imp.Reason != nil {
				reason = *imp.Reason
			}
			if imp.Status != want {
				t.Fatalf("%s (reason %.300q), want %s", imp.Status, reason, want)
			}
			if len(reason) > textlimit.Reason {
				t.Errorf("reason of %d bytes", len(reason))
			}
			if want == events.StatusCompleted {
				got := events.Stats{Total: imp.Stats.Total, Created: imp.Stats.Created, Skipped: imp.Stats.Skipped, Failed: imp.Stats.Failed}
				if got != h.stats {
					t.Errorf("stats %+v, want %+v", got, h.stats)
				}
				return
			}
			if reason == "" || !strings.Contains(reason, h.reason) {
				t.Errorf("reason %.300q, want it to name %q", reason, h.reason)
			}
		})
	}
	if n := len(cases) + len(hostileRequests()); n < 60 {
		t.Errorf("%d hostile inputs, want at least 60", n)
	}
	after := runImport(t, a, events.Options{OrganizationID: "after", Resource: "companies"}, "c.csv", "code,name\nC1,One\n")
	if after.Status != events.StatusCompleted || after.Stats.Created != 1 {
		t.Fatalf("a plain import after the hostile ones: %s %+v", after.Status, after.Stats)
	}
}

// hostileRequests are import requests on NATS that are not what they claim.
func hostileRequests() []struct{ name, subject, body, reason string } {
	sub := events.Subject("acme", "customers", events.EventRequested)
	return []struct{ name, subject, body, reason string }{
		{"not JSON", sub, "{not json", "refused"},
		{"not a CloudEvent", sub, `[1,2,3]`, "refused"},
		{"data not an object", sub, `{"specversion":"1.0","id":"x","source":"t","type":"t","data":"text"}`, "refused"},
		{"another organization", sub, `{"specversion":"1.0","id":"y","source":"t","type":"t","data":{"organization_id":"other","resource":"customers"}}`, "must match the subject"},
		{"another resource", sub, `{"specversion":"1.0","id":"z","source":"t","type":"t","data":{"organization_id":"acme","resource":"companies"}}`, "must match the subject"},
		{"empty body", sub, ``, "refused"},
		{"binary body", sub, "\x00\xff\x01", "refused"},
	}
}

func TestHostileRequests(t *testing.T) {
	a := startEmbedded(t)
	failed := make(chan events.Import, 16)
	sub, err := a.Broker.Conn.Subscribe(events.Subject("acme", "customers", string(events.StatusFailed)), func(m *nats.Msg) {
		if ce, err := events.Decode(m.Data); err == nil {
			var imp events.Import
			if json.Unmarshal(ce.Data, &imp) == nil {
				failed <- imp
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	for i, r := range hostileRequests() {
		if err := a.Broker.Publish(context.Background(), r.subject, fmt.Sprintf("hostile-%d", i), []byte(r.body)); err != nil {
			t.Fatal(err)
		}
		select {
		case imp := <-failed:
			if imp.Reason == nil || !strings.Contains(*imp.Reason, r.reason) || len(*imp.Reason) > textlimit.Reason {
				t.Errorf("%s: reason %v, want a bounded one saying %q", r.name, imp.Reason, r.reason)
			}
		case <-time.After(15 * time.Second):
			t.Fatalf("%s: no answer", r.name)
		}
	}
	after := runImport(t, a, events.Options{ID: imports.NewID(time.Now()), OrganizationID: "after", Resource: "companies"}, "c.csv", "code,name\nC1,One\n")
	if after.Status != events.StatusCompleted {
		t.Fatalf("a plain import after the hostile requests: %s", after.Status)
	}
}
