package projector_test

import (
	"encoding/json"
	"testing"

	"github.com/inlet-dev/inlet/events"
	"github.com/inlet-dev/inlet/internal/httpapi"
	"github.com/inlet-dev/inlet/internal/imports"
)

func TestUploadConvertedFromCSV(t *testing.T) {
	e := newEnv(t)
	imp := newImport(t, "acme", "customers", t0)
	apply(t, e.p, importEvent(t, imp, events.EventQueued))

	// No file yet.
	for _, ext := range []string{"csv", "json"} {
		code, b := e.get(t, "/v1/imports/"+imp.ID+"/upload."+ext, httpapi.OrgHeader, "acme")
		if code != 404 || decodeJSON[httpapi.ErrorBody](t, b).Error.Code != "not_found" {
			t.Errorf("upload.%s without a file: %d %s", ext, code, b)
		}
	}
	e.put(t, imports.SourceKey(imp.ID, "My_File.csv"), "\xEF\xBB\xBFemail,name,_row,note\r\na@x.io,\"Ann, A\",7,\"multi\nline\"\r\n\r\nb@x.io,Bob,,\r\n")

	code, b := e.get(t, "/v1/imports/"+imp.ID+"/upload.csv", httpapi.OrgHeader, "acme")
	want := "email,name,note\na@x.io,\"Ann, A\",\"multi\nline\"\nb@x.io,Bob,\n"
	if code != 200 || string(b) != want {
		t.Errorf("upload.csv: %d\n%q\nwant\n%q", code, b, want)
	}
	code, b = e.get(t, "/v1/imports/"+imp.ID+"/upload.json", httpapi.OrgHeader, "acme")
	got := decodeJSON[[]map[string]any](t, b)
	if code != 200 || len(got) != 2 || got[0]["name"] != "Ann, A" || got[0]["note"] != "multi\nline" || got[1]["email"] != "b@x.io" || got[0]["_row"] != nil {
		t.Errorf("upload.json: %d %s", code, b)
	}
	// Another organization sees nothing.
	if code, _ := e.get(t, "/v1/imports/"+imp.ID+"/upload.csv", httpapi.OrgHeader, "other"); code != 404 {
		t.Errorf("foreign organization: %d", code)
	}
}

func TestUploadConvertedFromJSONL(t *testing.T) {
	e := newEnv(t)
	o := events.Options{ID: imports.NewID(t0), OrganizationID: "acme", Resource: "customers", Format: "jsonl"}
	if err := imports.Normalize(&o); err != nil {
		t.Fatal(err)
	}
	imp := imports.Initial(o, t0)
	apply(t, e.p, importEvent(t, imp, events.EventQueued))
	e.put(t, imports.SourceKey(imp.ID, "inputs.jsonl"),
		`{"email":"a@x.io","age":30,"tags":["x",1]}`+"\n"+
			`{"name":"B","email":"b@x.io","big":12345678901234567890.5,"vip":true,"n":null}`+"\n")

	code, b := e.get(t, "/v1/imports/"+imp.ID+"/upload.csv", httpapi.OrgHeader, "acme")
	want := "email,age,tags,name,big,vip,n\na@x.io,30,\"[\"\"x\"\",1]\",,,,\nb@x.io,,,B,12345678901234567890.5,true,\n"
	if code != 200 || string(b) != want {
		t.Errorf("upload.csv: %d\n%q\nwant\n%q", code, b, want)
	}
	code, b = e.get(t, "/v1/imports/"+imp.ID+"/upload.json", httpapi.OrgHeader, "acme")
	var got []json.RawMessage
	if err := json.Unmarshal(b, &got); err != nil || code != 200 || len(got) != 2 ||
		string(got[1]) != `{"name":"B","email":"b@x.io","big":12345678901234567890.5,"vip":true,"n":null}` {
		t.Errorf("upload.json: %d %s (%v)", code, b, err)
	}
}

func TestUploadConvertedUnreadable(t *testing.T) {
	e := newEnv(t)
	o := events.Options{ID: imports.NewID(t0), OrganizationID: "acme", Resource: "customers", Format: "json"}
	imports.Normalize(&o)
	imp := imports.Initial(o, t0)
	apply(t, e.p, importEvent(t, imp, events.EventQueued))
	e.put(t, imports.SourceKey(imp.ID, "a.json"), `{"not":"an array"}`)
	code, b := e.get(t, "/v1/imports/"+imp.ID+"/upload.json", httpapi.OrgHeader, "acme")
	if code != 422 || decodeJSON[httpapi.ErrorBody](t, b).Error.Code != "invalid_file" {
		t.Errorf("unreadable file: %d %s", code, b)
	}
}
