// Command healthcheck probes an Inlet service in its own container, where the
// distroless image has no curl or wget: docker-compose's healthcheck runs
// it. It GETs http://127.0.0.1:<port of INLET_HTTP_ADDR>/readyz (or the path
// or URL given as its argument) and exits 0 on a 2xx answer, 1 otherwise.
package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"time"
)

func main() {
	arg := ""
	if len(os.Args) > 1 {
		arg = os.Args[1]
	}
	url, err := target(os.Getenv("INLET_HTTP_ADDR"), arg)
	if err == nil {
		err = probe(url, 3*time.Second)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "healthcheck:", err)
		os.Exit(1)
	}
}

// target is the URL to probe: arg when it is a URL, else the path arg (default
// /readyz) on the loopback at the port of addr (INLET_HTTP_ADDR, default
// 127.0.0.1:8080 as in internal/app).
func target(addr, arg string) (string, error) {
	if strings.HasPrefix(arg, "http://") || strings.HasPrefix(arg, "https://") {
		return arg, nil
	}
	path := arg
	if path == "" {
		path = "/readyz"
	}
	if !strings.HasPrefix(path, "/") {
		return "", fmt.Errorf("argument %q: want a path (/healthz) or a URL", arg)
	}
	if addr == "" {
		addr = "127.0.0.1:8080"
	}
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("INLET_HTTP_ADDR %q: %w", addr, err)
	}
	return "http://" + net.JoinHostPort("127.0.0.1", port) + path, nil
}

func probe(url string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return nil
}
