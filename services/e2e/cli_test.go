package e2e

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/inlet-dev/inlet/events"
)

// cli runs the inlet command line against the cluster as org, and returns
// its exit status and what it printed on stdout and stderr.
func (c *Cluster) cli(org string, args ...string) (code int, stdout, stderr string) {
	c.T.Helper()
	bin, err := Binary("inlet")
	if err != nil {
		c.T.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), c.cliEnv(org)...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit):
		code = exit.ExitCode()
	default:
		c.T.Fatalf("inlet %v: %v", args, err)
	}
	return code, out.String(), errOut.String()
}

// cliEnv points the command line at the cluster: writes to the gateway,
// reads from the projector, with org's key.
func (c *Cluster) cliEnv(org string) []string {
	return []string{"INLET_SERVER=" + c.GatewayURL(), "INLET_READ_SERVER=" + c.ProjectorURL(), "INLET_API_KEY=" + c.Key(org)}
}

// The commands a user scripts, run as a user runs them (the binary, its
// flags and environment, its exit status), against a cluster of separate
// services.
func TestCLICommands(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	c := NewCluster(t, Options{Orgs: []string{"globex"}})
	dir := t.TempDir()
	file := filepath.Join(dir, "companies.csv")
	body := companyRows("CLI", 30) + "CLIX,\n" // one row without its required name
	if err := os.WriteFile(file, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}

	// Over the default 10% threshold? 1 of 31 is not: the import completes,
	// with the row failed; output is plain lines when not on a terminal.
	code, out, errOut := c.cli("acme", "import", file, "--name", "from the CLI", "--reference", "ref-1")
	if code != 0 {
		t.Fatalf("import: exit %d\n%s\n%s", code, out, errOut)
	}
	id := regexp.MustCompile(`import (imp_\w+) completed`).FindStringSubmatch(out)
	if id == nil || !strings.Contains(out, "rows 31: created 30") || !strings.Contains(out, "failed 1") ||
		!strings.Contains(out, "inlet errors "+id[1]+" -o errors.csv") || !strings.Contains(out, c.ProjectorURL()+"/v1/imports/"+id[1]+"/errors.csv") {
		t.Fatalf("import summary:\n%s", out)
	}
	for _, phase := range events.Phases {
		if !regexp.MustCompile(`(?m)^` + phase + `\s+completed`).MatchString(errOut) {
			t.Errorf("no line says %s completed:\n%s", phase, errOut)
		}
	}
	imp, err := c.Client("acme").Get(context.Background(), id[1])
	if err != nil {
		t.Fatal(err)
	}
	if imp.Name != "from the CLI" || imp.Reference != "ref-1" || imp.Resource != "companies" {
		t.Errorf("the import's options: name %q reference %q resource %q", imp.Name, imp.Reference, imp.Resource)
	}

	// status, list, watch on the finished import.
	if code, out, _ := c.cli("acme", "status", id[1]); code != 0 || !strings.Contains(out, "import "+id[1]+": completed") ||
		!regexp.MustCompile(`(?m)^\s+prevalidation\s+completed\s+1/1\s+31\s+`).MatchString(out) {
		t.Errorf("status: exit %d\n%s", code, out)
	}
	code, out, _ = c.cli("acme", "list", "--json", "--resource", "companies")
	var listed []events.Import
	if code != 0 || json.Unmarshal([]byte(out), &listed) != nil || len(listed) != 1 || listed[0].ID != id[1] {
		t.Errorf("list --json: exit %d\n%s", code, out)
	}
	if code, out, _ := c.cli("acme", "list", "--status", "failed"); code != 0 || strings.Contains(out, id[1]) || !strings.HasPrefix(out, "ID") {
		t.Errorf("list --status failed: exit %d\n%s", code, out)
	}
	if code, out, _ := c.cli("acme", "watch", id[1], "--json"); code != 0 || !strings.Contains(out, `"status": "completed"`) {
		t.Errorf("watch --json: exit %d\n%s", code, out)
	}

	// errors: the CSV to a file, ready to fix and import again; the JSON.
	errFile := filepath.Join(dir, "errors.csv")
	if code, out, errOut := c.cli("acme", "errors", id[1], "-o", errFile); code != 0 {
		t.Fatalf("errors -o: exit %d\n%s%s", code, out, errOut)
	}
	raw, _ := os.ReadFile(errFile)
	recs, err := csv.NewReader(bytes.NewReader(raw)).ReadAll()
	if err != nil || len(recs) != 2 || strings.Join(recs[0], ",") != "code,name,_row,_phase,_code,_field,_message" ||
		recs[1][0] != "CLIX" || recs[1][2] != "31" || recs[1][5] != "name" {
		t.Errorf("errors.csv (%v):\n%s", err, raw)
	}
	code, out, _ = c.cli("acme", "errors", id[1], "--json")
	var rowErrors []events.RowError
	if code != 0 || json.Unmarshal([]byte(out), &rowErrors) != nil || len(rowErrors) != 1 || rowErrors[0].Field != "name" {
		t.Errorf("errors --json: exit %d\n%s", code, out)
	}

	// resources and records.
	if code, out, _ := c.cli("acme", "resources"); code != 0 || !regexp.MustCompile(`(?m)^customers\s+email\s+external_id\s+company_code→companies.code`).MatchString(out) {
		t.Errorf("resources: exit %d\n%s", code, out)
	}
	code, out, _ = c.cli("acme", "records", "companies", "--key", "CLI7")
	var rec events.Record
	if code != 0 || json.Unmarshal([]byte(out), &rec) != nil || !strings.Contains(string(rec.Data), `"name":"Company 7"`) {
		t.Errorf("records --key: exit %d\n%s", code, out)
	}
	if code, out, _ := c.cli("acme", "records", "companies", "-n", "100"); code != 0 || strings.Count(out, "\n") != 30 {
		t.Errorf("records: exit %d, %d lines, want the 30 imported", code, strings.Count(out, "\n"))
	}
	// Another organization sees none of them.
	if code, out, _ := c.cli("globex", "records", "companies"); code != 0 || out != "" {
		t.Errorf("records of another organization: exit %d\n%s", code, out)
	}

	// What fails says so and exits non-zero: an import that does not
	// complete, an interrupt of a finished import, an unknown import, a bad flag.
	bad := filepath.Join(dir, "companies-bad.csv")
	os.WriteFile(bad, []byte("code,name\nB1,\nB2,\nB3,Fine\n"), 0o644)
	if code, out, _ := c.cli("acme", "import", bad, "--resource", "companies"); code != 1 ||
		!strings.Contains(out, "interrupted") || !strings.Contains(out, "error threshold exceeded") {
		t.Errorf("an import over its error threshold: exit %d\n%s", code, out)
	}
	if code, _, errOut := c.cli("acme", "interrupt", id[1]); code != 1 || !strings.Contains(errOut, "already_finished") {
		t.Errorf("interrupt of a finished import: exit %d\n%s", code, errOut)
	}
	if code, _, errOut := c.cli("acme", "status", "imp_01NOTANIMPORT0000000000000"); code != 1 || !strings.Contains(errOut, "404") {
		t.Errorf("status of an unknown import: exit %d\n%s", code, errOut)
	}
	if code, _, errOut := c.cli("acme", "import", file, "--action", "upsert"); code != 80 || !strings.Contains(errOut, "--action") {
		t.Errorf("an unknown action: exit %d\n%s", code, errOut)
	}
	if code, _, errOut := c.cli("acme", "list", "--http-timeout", "soon"); code != 80 || !strings.Contains(errOut, "--http-timeout") {
		t.Errorf("a malformed duration: exit %d\n%s", code, errOut)
	}
}

// A user runs inlet import in a terminal: a bar per phase advances while
// the import runs, and the last screen shows every phase done and the
// import's stats. The terminal is tmux's; the screen is what tmux shows.
func TestCLIImportInATerminal(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	tmux, err := exec.LookPath("tmux")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("tmux is missing (make deps installs it)")
		}
		t.Skip("tmux is missing (make deps installs it)")
	}
	const rows = 60000
	c := NewCluster(t, Options{BatchSize: 2000})
	file := filepath.Join(t.TempDir(), "companies.csv")
	if err := os.WriteFile(file, []byte(companyRows("T", rows)), 0o644); err != nil {
		t.Fatal(err)
	}
	bin, err := Binary("inlet")
	if err != nil {
		t.Fatal(err)
	}
	socket := filepath.Join(t.TempDir(), "tmux.sock")
	run := func(args ...string) string {
		t.Helper()
		out, err := exec.Command(tmux, append([]string{"-S", socket}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("tmux %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	script := fmt.Sprintf("env %s %s import %s; echo EXIT=$?; sleep 600", strings.Join(c.cliEnv("acme"), " "), bin, file)
	run("new-session", "-d", "-x", "120", "-y", "24", "-s", "cli", script)
	t.Cleanup(func() { exec.Command(tmux, "-S", socket, "kill-server").Run() })

	// Read the screen until the command has exited, keeping each phase's
	// progress as the bars showed it.
	barRE := regexp.MustCompile(`(?m)^(\w+)\s+(\d+) / (\d+) rows`)
	seen := map[string][]int{} // phase → the distinct counts its bar showed
	var screen string
	deadline := time.Now().Add(3 * time.Minute)
	for !strings.Contains(screen, "EXIT=") {
		if time.Now().After(deadline) {
			t.Fatalf("inlet import did not end within 3 minutes; screen:\n%s", screen)
		}
		time.Sleep(100 * time.Millisecond)
		screen = run("capture-pane", "-p", "-t", "cli")
		for _, m := range barRE.FindAllStringSubmatch(screen, -1) {
			n, _ := strconv.Atoi(m[2])
			if counts := seen[m[1]]; len(counts) == 0 || counts[len(counts)-1] != n {
				seen[m[1]] = append(counts, n)
			}
		}
	}
	t.Logf("final screen:\n%s", screen)
	// The bars advanced: some phase showed a count strictly between 0 and
	// the file's rows, and each phase's counts only grew.
	advanced := false
	for phase, counts := range seen {
		for i, n := range counts {
			if n > 0 && n < rows {
				advanced = true
			}
			if i > 0 && n < counts[i-1] {
				t.Errorf("%s's bar went back: %v", phase, counts)
			}
		}
	}
	if !advanced {
		t.Errorf("no bar showed the import part way (counts seen: %v)", seen)
	}
	// The final screen: every phase done, the stats, exit 0.
	for _, phase := range events.Phases {
		want := fmt.Sprintf(`(?m)^%s\s+%d / %d rows\s+done`, phase, rows, rows)
		if phase == events.PhaseCleanup {
			want = `(?m)^cleanup\s+\d+ / \d+ rows\s+done` // cleanup reads no rows
		}
		if !regexp.MustCompile(want).MatchString(screen) {
			t.Errorf("the final screen does not show %s done", phase)
		}
	}
	if !regexp.MustCompile(`import imp_\w+ completed in [\d.]+m?s \(\d+ rows/s\)`).MatchString(screen) ||
		!strings.Contains(screen, fmt.Sprintf("rows %d: created %d", rows, rows)) || !strings.Contains(screen, "EXIT=0") {
		t.Errorf("the final screen lacks the summary or the exit status")
	}
	if strings.Contains(screen, "\x1b[") {
		t.Errorf("escape codes leaked into the screen")
	}
}
