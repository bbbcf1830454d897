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

func TestOrgWithIdentity(t *testing.T) {
	r := httptest.NewRequest("GET", "/?organization_id=other", nil)
	if Principal(r) != DefaultPrincipal || ForeignOrg(r) != nil {
		t.Error("without a key: principal api, nothing foreign")
	}
	if o, err := ResolveOrg(r, "body"); o != "body" || err != nil {
		t.Errorf("without a key ResolveOrg = %q, %v", o, err)
	}
	r = r.WithContext(WithIdentity(r.Context(), Identity{KeyID: "k1", Org: "acme"}))
	r.Header.Set(OrgHeader, "acme")
	if Org(r, "") != "acme" || Org(r, "other") != "acme" || Principal(r) != "k1" {
		t.Errorf("with a key Org must be the key's organization whatever is named: %q %q %q", Org(r, ""), Org(r, "other"), Principal(r))
	}
	if fe := ForeignOrg(r); fe == nil || fe.Named != "other" || fe.Own != "acme" {
		t.Errorf("query naming another organization: %+v", fe)
	}
	if o, err := ResolveOrg(r, "acme"); o != "acme" || err != nil {
		t.Errorf("naming the own organization: %q %v", o, err)
	}
	if _, fe := ResolveOrg(r, "other"); fe == nil || fe.Named != "other" {
		t.Error("a body naming another organization must fail")
	}
	r.Header.Set(OrgHeader, "other")
	if _, fe := ResolveOrg(r, ""); fe == nil {
		t.Error("a header naming another organization must fail")
	}
	if _, ok := IdentityFrom(WithIdentity(r.Context(), Identity{KeyID: "k"})); ok {
		t.Error("an identity without an organization is no identity")
	}
}
