package client_test

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// serverOnly are path prefixes of the server's modules and dependencies: a
// program importing the client must never build them (or fetch them).
var serverOnly = []string{
	"github.com/inlet-dev/inlet/internal", // the server module itself (pkg/client excepted)
	"github.com/nats-io/nats-server",
	"github.com/jackc/",
	"modernc.org/",
	"github.com/xuri/",
	"github.com/minio/",
	"github.com/ThreeDotsLabs/",
}

const clientModule = "github.com/inlet-dev/inlet/pkg/client"

// forbidden reports the serverOnly prefix a module or package path has.
func forbidden(path string) (string, bool) {
	if path == clientModule || strings.HasPrefix(path, clientModule+"/") {
		return "", false
	}
	for _, p := range serverOnly {
		if strings.HasPrefix(path, p) {
			return p, true
		}
	}
	return "", false
}

// modFile is what the test reads of a go.mod: its requirements (path →
// version, and whether indirect) and whether it has replace directives.
type modFile struct {
	require  map[string]string
	indirect map[string]bool
	replaces []string
}

func readModFile(t *testing.T, path string) modFile {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m := modFile{require: map[string]string{}, indirect: map[string]bool{}}
	block := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		comment := ""
		if i := strings.Index(line, "//"); i >= 0 {
			line, comment = strings.TrimSpace(line[:i]), strings.TrimSpace(line[i+2:])
		}
		fields := strings.Fields(line)
		switch {
		case len(fields) == 0:
			continue
		case fields[0] == ")":
			block = ""
			continue
		case len(fields) == 2 && fields[1] == "(":
			block = fields[0]
			continue
		}
		verb := block
		if verb == "" {
			verb, fields = fields[0], fields[1:]
		}
		switch verb {
		case "require":
			if len(fields) == 2 {
				m.require[fields[0]] = fields[1]
				m.indirect[fields[0]] = comment == "indirect"
			}
		case "replace":
			m.replaces = append(m.replaces, strings.Join(fields, " "))
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return m
}

// The client is a module outside users require: its go.mod (and that of the
// events module it requires) names none of the server's dependencies, no
// replace (which Go ignores for dependents) and a released events version.
func TestClientModuleRequiresNoServerDependency(t *testing.T) {
	client := readModFile(t, "go.mod")
	if len(client.replaces) > 0 {
		t.Errorf("go.mod has replace directives %v: Go ignores them in a dependent's build (the workspace resolves events locally)", client.replaces)
	}
	var direct []string
	for mod := range client.require {
		if !client.indirect[mod] {
			direct = append(direct, mod)
		}
	}
	sort.Strings(direct)
	if strings.Join(direct, " ") != "github.com/inlet-dev/inlet/events github.com/nats-io/nats.go" {
		t.Errorf("direct requirements %v, want the events module and nats.go only", direct)
	}
	if v := client.require["github.com/inlet-dev/inlet/events"]; !regexp.MustCompile(`^v[0-9]+\.[0-9]+\.[0-9]+$`).MatchString(v) {
		t.Errorf("events is required at %q: outside users need a tagged release (events/vX.Y.Z), not a pseudo-version", v)
	}
	events := readModFile(t, filepath.Join("..", "..", "events", "go.mod"))
	for what, m := range map[string]modFile{"pkg/client/go.mod": client, "events/go.mod": events} {
		for mod := range m.require {
			if p, bad := forbidden(mod); bad {
				t.Errorf("%s requires %s (%s…): a server dependency would reach the client's users", what, mod, p)
			}
		}
	}
}

// What a program importing the client compiles: no package of a server
// dependency.
func TestClientBuildsNoServerPackage(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command on PATH")
	}
	out, err := exec.Command(goBin, "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	var pkgs []string
	for _, p := range strings.Fields(string(out)) {
		pkgs = append(pkgs, p)
		if pre, bad := forbidden(p); bad {
			t.Errorf("the client builds %s (%s…)", p, pre)
		}
	}
	if len(pkgs) == 0 || !strings.Contains(string(out), "github.com/nats-io/nats.go") {
		t.Errorf("go list -deps listed %v: not the client's dependencies", pkgs)
	}
}
