package main

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

func TestTarget(t *testing.T) {
	for _, c := range []struct{ addr, arg, want string }{
		{"", "", "http://127.0.0.1:8080/readyz"},
		{"0.0.0.0:9090", "", "http://127.0.0.1:9090/readyz"},
		{":8081", "/healthz", "http://127.0.0.1:8081/healthz"},
		{"[::]:9090", "", "http://127.0.0.1:9090/readyz"},
		{":9090", "http://example.test:1/x", "http://example.test:1/x"},
	} {
		if got, err := target(c.addr, c.arg); err != nil || got != c.want {
			t.Errorf("target(%q, %q) = %q, %v; want %q", c.addr, c.arg, got, err, c.want)
		}
	}
	for _, c := range []struct{ addr, arg string }{{"9090", ""}, {":9090", "readyz"}} {
		if got, err := target(c.addr, c.arg); err == nil {
			t.Errorf("target(%q, %q) = %q, want an error", c.addr, c.arg, got)
		}
	}
}

func TestProbe(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/readyz" {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	if err := probe(srv.URL+"/readyz", time.Second); err != nil {
		t.Fatal(err)
	}
	if err := probe(srv.URL+"/other", time.Second); err == nil {
		t.Fatal("a 503 passed")
	}
	srv.Close()
	if err := probe(srv.URL+"/readyz", time.Second); err == nil {
		t.Fatal("a closed server passed")
	}
}
