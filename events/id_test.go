package events_test

import (
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/inlet-dev/inlet/events"
)

func TestIDCarriesItsTime(t *testing.T) {
	base := time.Date(2026, 3, 14, 9, 27, 2, 589_000_000, time.UTC)
	var ids []string
	for i := 0; i < 100; i++ {
		at := base.Add(time.Duration(i) * time.Millisecond)
		id := events.NewID(at)
		if !strings.HasPrefix(id, events.IDPrefix) || len(id) != len(events.IDPrefix)+26 || !events.ValidToken(id) {
			t.Fatalf("id %q is not imp_ + a token-safe ULID", id)
		}
		got, ok := events.IDTime(id)
		if !ok || !got.Equal(at) {
			t.Fatalf("IDTime(%s) = %v %v, want %v", id, got, ok, at)
		}
		ids = append(ids, id)
	}
	if !sort.StringsAreSorted(ids) {
		t.Errorf("ids of increasing times do not sort: %v", ids)
	}
	if events.NewID(base) == events.NewID(base) {
		t.Error("two ids of the same millisecond are equal")
	}
}

func TestIDTimeIsStrict(t *testing.T) {
	// The example of the ULID specification.
	if got, ok := events.IDTime("01ARZ3NDEKTSV4RRFFQ69G5FAV"); !ok || got.UnixMilli() != 1469922850259 {
		t.Errorf("spec example: %v %v, want 1469922850259 ms", got, ok)
	}
	if got, ok := events.IDTime("imp_01arz3ndektsv4rrffq69g5fav"); !ok || got.UnixMilli() != 1469922850259 {
		t.Errorf("lower case: %v %v", got, ok)
	}
	if got, ok := events.IDTime("imp_7ZZZZZZZZZZZZZZZZZZZZZZZZZ"); !ok || got.UnixMilli() != 1<<48-1 {
		t.Errorf("largest ULID: %v %v", got, ok)
	}
	for _, id := range []string{
		"", "imp_", "imp_custom-1", "imp_01ARZ3NDEKTSV4RRFFQ69G5FA", "imp_01ARZ3NDEKTSV4RRFFQ69G5FAVX",
		"imp_81ARZ3NDEKTSV4RRFFQ69G5FAV", // overflows 128 bits
		"imp_01ARZ3NDEKTSV4RRFFQ69G5FAU", // U, I, L, O are not Crockford digits
		"imp_01ARZ3NDEKTSV4RRFFQ69G5FAI", "imp_01ARZ3NDEKTSV4RRFFQ69G5FAL", "imp_01ARZ3NDEKTSV4RRFFQ69G5FAO",
		"imp_01ARZ3NDEKTSV4RRFFQ69G5FA-",
	} {
		if got, ok := events.IDTime(id); ok {
			t.Errorf("IDTime(%q) = %v, want no time", id, got)
		}
	}
}
