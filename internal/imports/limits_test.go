package imports

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/inlet-dev/inlet/events"
	"github.com/inlet-dev/inlet/internal/textlimit"
)

func TestOptionsBeyondTheLimitsAreRefused(t *testing.T) {
	long := strings.Repeat("n", MaxTextOption+1)
	big := map[string]any{"blob": strings.Repeat("m", MaxMetadata)}
	for _, tc := range []struct {
		field string
		set   func(*events.Options)
	}{
		{"name", func(o *events.Options) { o.Name = long }},
		{"reference", func(o *events.Options) { o.Reference = long }},
		{"created_by", func(o *events.Options) { o.CreatedBy = long }},
		{"parent_resource_id", func(o *events.Options) { o.ParentResourceID = &long }},
		{"metadata", func(o *events.Options) { o.Metadata = big }},
		{"column_mapping", func(o *events.Options) {
			o.ColumnMapping = map[string]string{"f": strings.Repeat("c", MaxColumnMapping)}
		}},
		{"mode", func(o *events.Options) { o.Mode = events.Mode(strings.Repeat("x", 10<<20)) }},
	} {
		o := events.Options{Resource: "companies"}
		tc.set(&o)
		err := Normalize(&o)
		var oe *OptionError
		if !errors.As(err, &oe) || oe.Field != tc.field {
			t.Errorf("%s: %v, want an OptionError on %s", tc.field, err, tc.field)
			continue
		}
		if len(oe.Error()) > 300 {
			t.Errorf("%s: error of %d bytes: %.80s…", tc.field, len(oe.Error()), oe.Error())
		}
	}
	ok := events.Options{Resource: "companies", Name: strings.Repeat("n", MaxTextOption), Metadata: map[string]any{"a": 1}}
	if err := Normalize(&ok); err != nil {
		t.Errorf("options at the limits: %v", err)
	}
}

// The terminal object of an import refused for its options carries them:
// it drops what is beyond the limits so that its event stays small.
func TestFinishedImportsAreBounded(t *testing.T) {
	opts := events.Options{ID: NewID(time.Now()), OrganizationID: "acme", Resource: "companies",
		Name: strings.Repeat("n", 1<<20), Metadata: map[string]any{"blob": strings.Repeat("m", 4<<20)}}
	imp := Initial(opts, time.Now())
	imp.File.Name = strings.Repeat("f", 1<<20)
	Finish(&imp, events.StatusFailed, "invalid options: "+strings.Repeat("r\x00", 1<<20), time.Now())
	b, err := json.Marshal(imp)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) > 16<<10 {
		t.Fatalf("terminal import object of %d bytes", len(b))
	}
	if imp.Reason == nil || len(*imp.Reason) > textlimit.Reason || strings.ContainsRune(*imp.Reason, 0) {
		t.Fatalf("reason not bounded or not escaped: %.100q", deref(imp.Reason))
	}
	if imp.Metadata != nil {
		t.Fatalf("metadata beyond the limit kept")
	}
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
