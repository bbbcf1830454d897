package resources

import (
	"strings"
	"testing"
)

// Each format against its RFC: the cases marked lax are ones the JSON Schema
// library's own check accepted.
func TestFormatsHoldToTheirRFCs(t *testing.T) {
	long := strings.Repeat("a", 64)
	for _, tc := range []struct {
		format string
		check  func(string) error
		good   []string
		bad    []string
	}{
		{"email", checkEmail,
			[]string{"a@x.io", "first.last@example.com", "o'neil+tag@sub.example.co.uk", long + "@x.io",
				`"john doe"@example.com`, `"a\"b"@x.io`, "user@[192.168.0.1]", "user@[IPv6:2001:db8::1]", "x@xn--bcher-kva.example"},
			[]string{"@x.io" /* lax */, `""@x.io` /* lax */, "a@1.2.3.4" /* lax */, "a@localhost" /* lax */, "a@x.123", /* lax */
				"a", "a@", "a.@x.io", ".a@x.io", "a..b@x.io", "a b@x.io", "a@x_y.io", "a@-x.io", "a@x.io-",
				long + "a@x.io", "a@[300.1.1.1]", "a@[IPv6:zz::]", "é@x.io", "a@x..io", `"a"b"@x.io`}},
		{"hostname", checkHostname,
			[]string{"example.com", "a", "a-b.c-d.io", "xn--bcher-kva.example", "example.com.", strings.Repeat("a", 63) + ".io"},
			[]string{"1.2.3.4" /* lax */, "example.123" /* lax */, "", "-a.io", "a-.io", "a..io", "a_b.io", strings.Repeat("a", 64) + ".io",
				strings.Repeat("a.", 127) + "io", "é.io", "a b"}},
		{"ipv4", checkIPv4,
			[]string{"0.0.0.0", "192.168.1.1", "255.255.255.255"},
			[]string{"+1.2.3.4" /* lax */, "1.+2.3.4" /* lax */, "256.1.1.1", "01.1.1.1", "1.1.1", "1.1.1.1.1", "a.b.c.d", "1.1.1.1 ", ""}},
		{"ipv6", checkIPv6,
			[]string{"::1", "2001:db8::1", "fe80::1:2:3:4", "::ffff:1.2.3.4", "2001:0db8:0000:0000:0000:0000:0000:0001"},
			[]string{"1.2.3.4", "fe80::1%eth0", ":::", "2001:db8::g", "12345::", ""}},
		{"date", checkDate,
			[]string{"2024-02-29", "1999-12-31"},
			[]string{"2023-02-29", "2024-13-01", "2024-1-01", "24-01-01", "2024/01/01", "2024-01-01T00:00:00Z", ""}},
		{"time", checkTime,
			[]string{"00:00:00Z", "23:59:59.999+01:00", "23:59:60Z", "00:59:60+01:00", "12:00:00z"},
			[]string{"+1:00:00Z" /* lax */, "1:00:00Z", "24:00:00Z", "12:60:00Z", "12:00:00", "12:00:00+1:00", "12:00:00.Z", "12:00:60Z", "12:00:00+24:00"}},
		{"date-time", checkDateTime,
			[]string{"2024-01-01T00:00:00Z", "2024-01-01t12:30:00.5-05:00", "1990-12-31T23:59:60Z"},
			[]string{"2024-01-01T+1:00:00Z" /* lax */, "2024-01-01 00:00:00Z", "2024-01-01T00:00:00", "2024-02-30T00:00:00Z", "2024-01-01"}},
		{"uri", checkURI,
			[]string{"https://example.com", "http://user:pw@example.com:8080/a/b?c=d#e", "mailto:a@x.io", "urn:isbn:0451450523",
				"http://[2001:db8::1]:80/", "file:///etc/hosts", "https://x.io/%41%7e", "s3+v2://bucket/key"},
			[]string{"http://exa mple.com", "https://é.example/" /* lax */, "http://x.io/a b" /* lax */, "http://x.io/%zz",
				"/relative/path", "example.com", "1http://x.io", "http://[::1/", "http://[zz::1]/", "http://x.io:80a/", "http://x.io/[a]", ""}},
		{"uuid", checkUUID,
			[]string{"123e4567-e89b-12d3-a456-426614174000", "00000000-0000-0000-0000-000000000000", "123E4567-E89B-12D3-A456-426614174000"},
			[]string{"123e4567e89b12d3a456426614174000", "123e4567-e89b-12d3-a456-42661417400", "123e4567-e89b-12d3-a456-42661417400g", "{123e4567-e89b-12d3-a456-426614174000}"}},
	} {
		for _, v := range tc.good {
			if err := tc.check(v); err != nil {
				t.Errorf("%s %q refused: %v", tc.format, v, err)
			}
		}
		for _, v := range tc.bad {
			if err := tc.check(v); err == nil {
				t.Errorf("%s %q accepted", tc.format, v)
			}
		}
	}
}

// The strict checks are what a resource's schema uses.
func TestResourcesUseTheStrictFormats(t *testing.T) {
	for _, f := range strictFormats {
		if err := f.Validate(map[string]any{}); err != nil {
			t.Errorf("%s: a non-string is not the format's business: %v", f.Name, err)
		}
	}
	reg, err := LoadDir("../../resources")
	if err != nil {
		t.Fatal(err)
	}
	res, ok := reg.Get("customers")
	if !ok {
		t.Fatal("no customers resource")
	}
	for _, email := range []string{"@x.io", "a@1.2.3.4"} {
		problems := res.Validate(map[string]any{"email": email, "name": "A"})
		found := false
		for _, p := range problems {
			found = found || p.Code == CodeFormat && p.Field == "email"
		}
		if !found {
			t.Errorf("customer with email %q: problems %v, want a schema.format problem on email", email, problems)
		}
	}
}
