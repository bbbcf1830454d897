package imports

import (
	"encoding/json"
	"fmt"

	"github.com/inlet-dev/inlet/events"
	"github.com/inlet-dev/inlet/internal/textlimit"
)

// Limits of the options a user gives: every event carries them, and an
// event must stay far below a broker's maximum payload (1 MB by default).
const (
	MaxTextOption    = 512      // name, reference, reference_origin, created_by, parent_resource_id, sheet
	MaxMetadata      = 16 << 10 // metadata, as JSON
	MaxColumnMapping = 64 << 10 // column_mapping, as JSON
)

// checkLimits refuses options beyond the limits.
func checkLimits(o *events.Options) error {
	texts := []struct {
		field string
		v     string
	}{
		{"name", o.Name}, {"reference", o.Reference}, {"reference_origin", o.ReferenceOrigin},
		{"created_by", o.CreatedBy}, {"sheet", o.Sheet},
	}
	if o.ParentResourceID != nil {
		texts = append(texts, struct {
			field string
			v     string
		}{"parent_resource_id", *o.ParentResourceID})
	}
	for _, t := range texts {
		if len(t.v) > MaxTextOption {
			return &OptionError{t.field, fmt.Sprintf("is %d bytes long; at most %d are allowed", len(t.v), MaxTextOption)}
		}
	}
	if n := jsonSize(o.Metadata); n > MaxMetadata {
		return &OptionError{"metadata", fmt.Sprintf("is %d bytes of JSON; at most %d are allowed", n, MaxMetadata)}
	}
	if n := jsonSize(o.ColumnMapping); n > MaxColumnMapping {
		return &OptionError{"column_mapping", fmt.Sprintf("is %d bytes of JSON; at most %d are allowed", n, MaxColumnMapping)}
	}
	return nil
}

func jsonSize(v any) int {
	b, err := json.Marshal(v)
	if err != nil {
		return 0
	}
	return len(b)
}

// bound drops from a finished import's object what is beyond the limits,
// so that the terminal event of an import refused for its options (they
// come with it) can still be published; the reason says what was refused.
func bound(imp *events.Import) {
	clip := func(p *string) {
		if len(*p) > MaxTextOption {
			*p = textlimit.Clip(*p, MaxTextOption)
		}
	}
	clip(&imp.Name)
	clip(&imp.Reference)
	clip(&imp.ReferenceOrigin)
	clip(&imp.CreatedBy)
	clip(&imp.UpdatedBy)
	clip(&imp.File.Name)
	clip(&imp.File.ContentType)
	clip(&imp.File.Sheet)
	if imp.ParentResourceID != nil {
		clip(imp.ParentResourceID)
	}
	if jsonSize(imp.Metadata) > MaxMetadata {
		imp.Metadata = nil
	}
	if jsonSize(imp.ColumnMapping) > MaxColumnMapping {
		imp.ColumnMapping = nil
	}
	if imp.Reason != nil && len(*imp.Reason) > textlimit.Reason {
		r := textlimit.Clip(*imp.Reason, textlimit.Reason)
		imp.Reason = &r
	}
}
