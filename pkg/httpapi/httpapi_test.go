package httpapi

import (
	"net/http/httptest"
	"testing"
)

func TestNewPageAndLimit(t *testing.T) {
	id := func(s string) string { return s }
	p := NewPage([]string{"c", "b", "a"}, 2, id)
	if len(p.Data) != 2 || !p.HasMore || p.NextCursor == nil || *p.NextCursor != "b" {
		t.Errorf("page with more: %+v", p)
	}
	p = NewPage([]string(nil), 2, id)
	if p.Data == nil || p.HasMore || p.NextCursor != nil {
		t.Errorf("empty page must have data [] and no cursor: %+v", p)
	}
	for q, want := range map[string]int{"": DefaultLimit, "?limit=7": 7, "?limit=100": 100, "?limit=101": 0, "?limit=x": 0, "?limit=-1": 0} {
		n, err := Limit(httptest.NewRequest("GET", "/"+q, nil))
		if n != want || (want == 0) != (err != nil) {
			t.Errorf("Limit(%q) = %d, %v; want %d", q, n, err, want)
		}
	}
	r := httptest.NewRequest("GET", "/", nil)
	if Org(r, "") != "default" {
		t.Error("no organization must mean default")
	}
	r.Header.Set(OrgHeader, "hdr")
	if Org(r, "") != "hdr" || Org(r, "body") != "body" {
		t.Error("explicit organization must win over the header, the header over the default")
	}
}
