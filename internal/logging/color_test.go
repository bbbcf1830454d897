package logging_test

import (
	"bytes"
	"io"
	"strings"
	"testing"

	"github.com/creack/pty"

	"github.com/inlet-dev/inlet/internal/logging"
)

// Console logs carry colour codes on a terminal only: in a file or a pipe
// they are noise.
func TestConsoleLogsAreColouredOnlyOnATerminal(t *testing.T) {
	var file bytes.Buffer
	toFile := logging.New(logging.Options{Console: true, Out: &file})
	toFile.Info().Str("k", "v").Msg("hello")
	if !strings.Contains(file.String(), "hello") || strings.Contains(file.String(), "\x1b[") {
		t.Errorf("to a buffer: %q, want the line without escape codes", file.String())
	}

	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Skipf("no pseudo-terminal here: %v", err)
	}
	defer ptmx.Close()
	toTerminal := logging.New(logging.Options{Console: true, Out: tty})
	toTerminal.Info().Str("k", "v").Msg("hello")
	tty.Close()
	screen, _ := io.ReadAll(ptmx)
	if !strings.Contains(string(screen), "hello") || !strings.Contains(string(screen), "\x1b[") {
		t.Errorf("to a terminal: %q, want colour codes", screen)
	}
}
