package pipeline_test

import (
	"bytes"
	"compress/gzip"
	"reflect"
	"strings"
	"testing"

	"github.com/inlet-dev/inlet/events"
	"github.com/inlet-dev/inlet/internal/imports"
)

// The mapping prevalidation used reaches the terminal import object, the
// same under a redelivery storm, whether the file imports or its headers
// fail it.
func TestFileReportSurvivesRedelivery(t *testing.T) {
	f := newFixture(t)
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, _ = zw.Write([]byte("sep=;\nEmail Address;NAME;Customer ID\na@x.io;Ann;0042\n"))
	_ = zw.Close()
	opts := events.Options{ID: imports.NewID(timeNow()), OrganizationID: "acme", Resource: "customers"}
	imp := f.run(t, opts, gz.String(), 3)
	want := map[string]string{"Email Address": "email", "NAME": "name", "Customer ID": "external_id"}
	if imp.Status != events.StatusCompleted || imp.File.Compression != "gzip" || imp.File.Delimiter != ";" ||
		!reflect.DeepEqual(imp.File.Columns, want) || imp.File.UnmappedHeaders != nil {
		t.Errorf("imported: %s %s file %+v", imp.Status, deref(imp.Reason), imp.File)
	}

	opts = events.Options{ID: imports.NewID(timeNow().Add(1)), OrganizationID: "acme", Resource: "customers"}
	imp = f.run(t, opts, "Mail,Nmae,Colour\na@x.io,Ann,red\n", 3)
	wantUnmapped := []events.UnmappedHeader{{Header: "Nmae", Suggestions: []string{"name"}}, {Header: "Colour", Suggestions: []string{}}}
	if imp.Status != events.StatusFailed || imp.Reason == nil || !strings.Contains(*imp.Reason, `"Nmae" (did you mean name?)`) ||
		!reflect.DeepEqual(imp.File.Columns, map[string]string{"Mail": "email"}) || !reflect.DeepEqual(imp.File.UnmappedHeaders, wantUnmapped) {
		t.Errorf("failed: %s %s file %+v", imp.Status, deref(imp.Reason), imp.File)
	}
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
