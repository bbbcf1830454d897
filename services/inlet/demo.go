package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/inlet-dev/inlet/events"
)

// runDemo imports each file through the HTTP API, the way a user would, and
// prints the finished import objects.
func runDemo(ctx context.Context, base string, files []string) error {
	if err := waitReady(ctx, base); err != nil {
		return err
	}
	for _, f := range files {
		imp, err := importFile(ctx, base, f)
		if err != nil {
			return fmt.Errorf("demo import of %s: %w", f, err)
		}
		out, _ := json.MarshalIndent(imp, "", "  ")
		fmt.Printf("\n=== %s → import %s: %s ===\n%s\n", filepath.Base(f), imp.ID, imp.Status, out)
		s := imp.Stats
		fmt.Printf("total %d: created %d, updated %d, unchanged %d, skipped %d, failed %d\n",
			s.Total, s.Created, s.Updated, s.Unchanged, s.Skipped, s.Failed)
		if s.Failed+s.Skipped > 0 {
			body, err := get(ctx, base+imp.Links.ErrorsCSV)
			if err == nil {
				fmt.Printf("--- %s ---\n%s", imp.Links.ErrorsCSV, body)
			}
		}
	}
	return nil
}

func waitReady(ctx context.Context, base string) error {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := get(ctx, base+"/readyz"); err == nil {
			return nil
		}
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("%s/readyz did not answer 200 within 30s", base)
}

func importFile(ctx context.Context, base, path string) (events.Import, error) {
	var imp events.Import
	f, err := os.Open(path)
	if err != nil {
		return imp, err
	}
	defer f.Close()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	resource := strings.TrimSuffix(filepath.Base(path), filepath.Ext(path))
	_ = mw.WriteField("resource", resource)
	_ = mw.WriteField("name", "demo: "+filepath.Base(path))
	// The sample holds a row of every fate, more failures than the default
	// 10% error threshold allows: import the valid rows and report the rest.
	_ = mw.WriteField("skip_errors", "true")
	part, err := mw.CreateFormFile("file", filepath.Base(path))
	if err != nil {
		return imp, err
	}
	if _, err := io.Copy(part, f); err != nil {
		return imp, err
	}
	mw.Close()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, base+"/v1/imports", &body)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return imp, err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusCreated {
		return imp, fmt.Errorf("POST /v1/imports: %s: %s", resp.Status, raw)
	}
	if err := json.Unmarshal(raw, &imp); err != nil {
		return imp, err
	}
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		body, err := get(ctx, base+"/v1/imports/"+imp.ID)
		if err == nil {
			var cur events.Import
			if json.Unmarshal(body, &cur) == nil && cur.Status.Terminal() {
				return cur, nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return imp, fmt.Errorf("import %s did not finish within 2 minutes", imp.ID)
}

func get(ctx context.Context, url string) ([]byte, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return b, err
}
