package e2e

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"

	"github.com/inlet-dev/inlet/events"
)

// TestDashboard drives the web page in headless Chromium against the
// separate shape with API keys, behind one address that sends reads to the
// projector and writes to the gateway (as deploy/compose/api.conf does): it
// uploads a file through the form with options, watches the import complete
// over server-sent events, reads its failed row, downloads its errors with
// the key, finds it in the filtered list, and interrupts a running import.
func TestDashboard(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	chromium := findChromium(t)
	const org = "acme"
	c := NewCluster(t, Options{BatchSize: 20})
	site := httptest.NewServer(readsAndWrites(t, c.ProjectorURL(), c.GatewayURL()))
	t.Cleanup(site.Close)

	downloads := t.TempDir()
	ctx := newBrowser(t, chromium)
	run := func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		step, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		if err := chromedp.Do(step, actions...); err != nil {
			page, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`location.href + "\n" + document.body.innerText`))
			t.Fatalf("%s: %v; the page:\n%s", what, err, page)
		}
	}
	text := func(sel string) string {
		t.Helper()
		step, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		s, err := chromedp.Run(step, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("read %s: %v", sel, err)
		}
		return strings.TrimSpace(s)
	}
	eval := func(expression string) any {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Evaluate[any](expression))
		if err != nil {
			t.Fatalf("evaluate %s: %v", expression, err)
		}
		return v
	}
	waitText := func(sel, want string) {
		t.Helper()
		deadline := time.Now().Add(2 * time.Minute)
		for {
			got := text(sel)
			if got == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s says %q, want %q", sel, got, want)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	upload := func(file string, check ...string) string {
		t.Helper()
		actions := []chromedp.Action[chromedp.Void]{
			chromedp.Navigate(site.URL + "/ui/#/new"),
			chromedp.WaitVisible(chromedp.CSS(`#upload-form`)),
			chromedp.WaitReady(chromedp.CSS(`#f-resource option[value="companies"]`)),
			chromedp.SetValue(chromedp.CSS(`#f-resource`), "companies"),
			chromedp.SetUploadFiles(chromedp.CSS(`#f-file`), []string{file}),
		}
		for _, sel := range check {
			actions = append(actions, chromedp.Click(chromedp.CSS(sel)))
		}
		actions = append(actions,
			chromedp.SendKeys(chromedp.CSS(`#f-reference`), "dashboard-test"),
			chromedp.SetValue(chromedp.CSS(`#f-metadata`), `{"ticket": "OPS-12"}`),
			chromedp.Click(chromedp.CSS(`#submit-import`)),
			chromedp.WaitVisible(chromedp.CSS(`#view-detail`)),
		)
		run("upload "+filepath.Base(file), actions...)
		hash, _ := eval(`location.hash`).(string)
		id, ok := strings.CutPrefix(hash, "#/imports/")
		if !ok || !strings.HasPrefix(id, "imp_") {
			t.Fatalf("after the upload the page shows %q, want an import's detail", hash)
		}
		c.Remember(id, org)
		return id
	}

	// The key, given once in the page (sessionStorage), then everything
	// through the page.
	run("open the page and give the key",
		chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
			_, err := chromedp.Call(ctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
				Behavior: browser.SetDownloadBehaviorBehaviorAllow, DownloadPath: downloads})
			return err
		}),
		chromedp.Navigate(site.URL+"/"),
		chromedp.WaitVisible(chromedp.CSS(`body[data-ready="true"]`)),
		chromedp.SendKeys(chromedp.CSS(`#org`), org),
		chromedp.SendKeys(chromedp.CSS(`#api-key`), c.Key(org)),
		chromedp.Click(chromedp.CSS(`#save-settings`)),
	)

	// 1. A file with one bad row, skip_errors on: it completes with the
	// right stats, shown as they arrive.
	small := filepath.Join(t.TempDir(), "companies.csv")
	if err := os.WriteFile(small, []byte("code,name\nDASH1,Dash One\nDASH2,Dash Two\nDASHBAD,\nDASH3,Dash Three\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	id := upload(small, `#f-skip-errors`)
	waitText(`#import-status`, "completed")
	for stat, want := range map[string]string{"total": "4", "created": "3", "failed": "1", "processed": "4"} {
		if got := text(fmt.Sprintf(`[data-testid="stat-%s"]`, stat)); got != want {
			t.Errorf("the page shows %s %q, want %q", stat, got, want)
		}
	}
	imp, ok := c.Import(id)
	if !ok || imp.Status != events.StatusCompleted || imp.Stats.Created != 3 || imp.Stats.Failed != 1 {
		t.Fatalf("the API says %+v, want completed with 3 created and 1 failed", imp.Stats)
	}
	if !imp.SkipErrors || imp.Reference != "dashboard-test" || imp.Metadata["ticket"] != "OPS-12" || imp.OrganizationID != org {
		t.Errorf("the form's options did not reach the import: skip_errors %v, reference %q, metadata %v, organization %q",
			imp.SkipErrors, imp.Reference, imp.Metadata, imp.OrganizationID)
	}
	phaseRows := int(eval(`document.querySelectorAll('[data-testid="phase-row"]').length`).(float64))
	if phaseRows != len(imp.Phases) || phaseRows == 0 {
		t.Errorf("the page shows %d phases, the import has %d", phaseRows, len(imp.Phases))
	}

	// 2. Its failed row: cells, code and message.
	run("open the failed rows",
		chromedp.Click(chromedp.CSS(`#show-errors`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="error-row"]`)))
	row := text(`[data-testid="error-row"]`)
	rowErrors := c.ErrorsJSON(id)
	if len(rowErrors) != 1 {
		t.Fatalf("errors.json has %d rows, want 1", len(rowErrors))
	}
	for _, want := range []string{"DASHBAD", rowErrors[0].Code, rowErrors[0].Message, fmt.Sprint(rowErrors[0].Row)} {
		if !strings.Contains(row, want) {
			t.Errorf("the failed row reads %q: %q is missing", row, want)
		}
	}

	// 3. errors.csv, downloaded with the key the page holds.
	run("download errors.csv", chromedp.Click(chromedp.CSS(`[data-testid="download-errors_csv"]`)))
	var csv []byte
	for deadline := time.Now().Add(30 * time.Second); len(csv) == 0; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("errors.csv was not downloaded into %s", downloads)
		}
		csv, _ = os.ReadFile(filepath.Join(downloads, id+"-errors.csv"))
	}
	if string(csv) != c.ErrorsCSV(id) {
		t.Errorf("the downloaded errors.csv:\n%s\nthe API's:\n%s", csv, c.ErrorsCSV(id))
	}

	// 3b. Its failed row run again from the page: the page goes to the
	// retry, which links back (the row, still without a name, fails again).
	run("retry", chromedp.WaitVisible(chromedp.CSS(`#retry`)), chromedp.Click(chromedp.CSS(`#retry`)),
		chromedp.Poll[chromedp.Void](fmt.Sprintf(`location.hash.startsWith("#/imports/") && !location.hash.endsWith(%q)`, id),
			chromedp.WithPollingTimeout(time.Minute)))
	retryHash, _ := eval(`location.hash`).(string)
	retryID := strings.TrimPrefix(retryHash, "#/imports/")
	c.Remember(retryID, org)
	retried := c.WaitTerminal(retryID)
	if retried.ParentImportID != id || retried.Stats.Total != 1 || retried.Stats.Failed != 1 {
		t.Errorf("the page's retry: parent %s, stats %+v; want a retry of %s running its 1 failed row", retried.ParentImportID, retried.Stats, id)
	}
	waitText(`#import-status`, string(retried.Status))
	if lineage := text(`#lineage`); !strings.Contains(lineage, id) {
		t.Errorf("the retry's page says %q, want a link to %s", lineage, id)
	}

	// 4. The list, filtered, finds it.
	run("filter the list",
		chromedp.Navigate(site.URL+"/ui/#/imports"),
		chromedp.WaitReady(chromedp.CSS(`#filter-resource option[value="companies"]`)),
		chromedp.SetValue(chromedp.CSS(`#filter-status`), "completed"),
		chromedp.SetValue(chromedp.CSS(`#filter-resource`), "companies"),
		chromedp.Click(chromedp.CSS(`#refresh`)),
		chromedp.WaitVisible(chromedp.CSS(fmt.Sprintf(`[data-testid="import-row"][data-id=%q][data-status="completed"]`, id))))
	run("filter the list to nothing",
		chromedp.SetValue(chromedp.CSS(`#filter-status`), "failed"),
		chromedp.Click(chromedp.CSS(`#refresh`)),
		chromedp.WaitVisible(chromedp.CSS(`#list-empty`)))

	// 5. A big file in batches of 20: interrupted from the page while it runs.
	big := filepath.Join(t.TempDir(), "big.csv")
	if err := os.WriteFile(big, []byte(companyRows("DASHBIG", 4000)), 0o644); err != nil {
		t.Fatal(err)
	}
	id = upload(big)
	waitText(`#import-status`, "processing")
	// The phases' rows move as the batches go: interrupt once processing
	// has written some, so that the import stops halfway.
	run("watch processing start",
		chromedp.Poll[chromedp.Void](`parseInt(document.querySelector('[data-phase="processing"] td:nth-of-type(3)')?.textContent.replace(/\D/g, "") || "0") > 0`,
			chromedp.WithPollingTimeout(time.Minute)))
	run("interrupt",
		chromedp.WaitVisible(chromedp.CSS(`#interrupt`)),
		chromedp.Click(chromedp.CSS(`#interrupt`)))
	waitText(`#import-status`, "interrupted")
	imp = c.WaitTerminal(id)
	if imp.Status != events.StatusInterrupted || imp.Stats.Total != 4000 || imp.Stats.Created == 0 || imp.Stats.Created >= 4000 {
		t.Errorf("the API says %s with stats %+v, want interrupted halfway", imp.Status, imp.Stats)
	}
	if got, want := text(`[data-testid="stat-created"]`), fmt.Sprint(imp.Stats.Created); got != want {
		t.Errorf("the page shows %s created, the import %s", got, want)
	}
	if reason := text(`#import-reason`); imp.Reason == nil || !strings.Contains(reason, *imp.Reason) {
		t.Errorf("the page gives the reason %q, the import %v", reason, imp.Reason)
	}
	if eval(`!document.querySelector('#interrupt').hidden`) != false {
		t.Error("an ended import still offers Interrupt")
	}

	// 6. The interrupted import reverted from its page: the page goes to the
	// revert, which removes what the import created and links back to it.
	run("revert",
		chromedp.WaitVisible(chromedp.CSS(`#revert`)),
		chromedp.Click(chromedp.CSS(`#revert`)),
		chromedp.Poll[chromedp.Void](fmt.Sprintf(`location.hash.startsWith("#/imports/") && !location.hash.endsWith(%q)`, id),
			chromedp.WithPollingTimeout(time.Minute)))
	hash, _ := eval(`location.hash`).(string)
	revID := strings.TrimPrefix(hash, "#/imports/")
	c.Remember(revID, org)
	waitText(`#import-status`, "completed")
	rev := c.WaitTerminal(revID)
	if rev.Action != events.ActionRevert || rev.ParentImportID != id || rev.Stats.Deleted != imp.Stats.Created {
		t.Errorf("the page's revert: action %s of %s, stats %+v; want a revert of %s deleting its %d records",
			rev.Action, rev.ParentImportID, rev.Stats, id, imp.Stats.Created)
	}
	if lineage := text(`#lineage`); !strings.Contains(lineage, id) {
		t.Errorf("the revert's page says %q, want a link to %s", lineage, id)
	}
	if n := int64(len(c.Records(org, "companies"))); n == 0 || eval(`document.querySelector('#revert-box').hidden`) != false {
		t.Errorf("%d companies after the revert; Revert offered on the revert: %v", n, eval(`!document.querySelector('#revert-box').hidden`))
	}
}

// findChromium is Debian's chromium (make deps installs it): a missing one
// skips the test, or fails it under CI=true.
func findChromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("chromium is missing (make deps installs it)")
	}
	t.Skip("chromium is missing (make deps installs it)")
	return ""
}

// newBrowser starts headless Chromium for the test; it ends with the test.
func newBrowser(t *testing.T, chromium string) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:], // headless among them
		chromedp.ExecPath(chromium),
		chromedp.NoSandbox, // tests run as root on CI machines
		chromedp.DisableGPU,
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx, chromedp.WithLogf(t.Logf))
	t.Cleanup(func() { cancel(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start %s: %v", chromium, err)
	}
	return ctx
}

// readsAndWrites is one address for the API as an ingress gives it: GET and
// HEAD to the projector (which also serves the page), the rest to the gateway.
func readsAndWrites(t *testing.T, projectorURL, gatewayURL string) http.Handler {
	t.Helper()
	proxy := func(base string) *httputil.ReverseProxy {
		u, err := url.Parse(base)
		if err != nil {
			t.Fatal(err)
		}
		return httputil.NewSingleHostReverseProxy(u)
	}
	reads, writes := proxy(projectorURL), proxy(gatewayURL)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet || r.Method == http.MethodHead {
			reads.ServeHTTP(w, r)
			return
		}
		writes.ServeHTTP(w, r)
	})
}
