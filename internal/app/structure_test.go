package app

import (
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// The gateway, the projector and the pipeline meet only here, in the
// composition root: none imports another, even through a third package.
func TestSidesDoNotReachIntoEachOther(t *testing.T) {
	const root = "github.com/inlet-dev/inlet/internal/"
	sides := []string{root + "gateway", root + "projector", root + "pipeline"}
	for _, side := range sides {
		out, err := exec.Command("go", "list", "-deps", side).Output()
		if err != nil {
			t.Fatalf("go list -deps %s: %v", side, err)
		}
		deps := strings.Fields(string(out))
		for _, other := range sides {
			if other != side && slices.Contains(deps, other) {
				t.Errorf("%s imports %s", side, other)
			}
		}
	}
}

// legacyJetStream matches nats.go's legacy JetStream API: the
// JetStreamContext and its options. Everything goes through the jetstream
// package.
var legacyJetStream = regexp.MustCompile(`\.JetStream\(|nats\.(JetStreamContext|JSOpt|SubOpt|StreamConfig|ConsumerConfig|StreamInfoRequest|StreamPurgeRequest|Bind|BindStream|Durable|ManualAck|OrderedConsumer|DeliverAll|PullMaxWaiting|MaxWait|AckWait|MsgId|Context)\b`)

func TestNoLegacyJetStreamAPI(t *testing.T) {
	self, _ := filepath.Abs("structure_test.go")
	err := filepath.WalkDir(repoRoot(), func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "bin" || d.Name() == "data" || strings.HasPrefix(d.Name(), ".")) {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || path == self {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for i, line := range strings.Split(string(b), "\n") {
			if m := legacyJetStream.FindString(line); m != "" {
				t.Errorf("%s:%d uses the legacy JetStream API (%s)", path, i+1, m)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
