// Package logging sets up zerolog for every Inlet process and adapts it to
// watermill's logger interface.
package logging

import (
	"io"
	"os"
	"strings"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/mattn/go-isatty"
	"github.com/rs/zerolog"
)

// Options choose the log output.
type Options struct {
	Level   string // trace|debug|info|warn|error; default info
	Console bool   // human-readable console output (embedded default) instead of JSON
	Service string // added to every line
	Out     io.Writer
}

// New builds the process logger.
func New(o Options) zerolog.Logger {
	out := o.Out
	if out == nil {
		out = os.Stderr
	}
	if o.Console {
		// Colour codes are for a terminal: in a file or a pipe they are noise.
		out = zerolog.ConsoleWriter{Out: out, TimeFormat: time.TimeOnly, NoColor: !isTerminal(out)}
	}
	lvl, err := zerolog.ParseLevel(strings.ToLower(o.Level))
	if err != nil || o.Level == "" {
		lvl = zerolog.InfoLevel
	}
	l := zerolog.New(out).Level(lvl).With().Timestamp()
	if o.Service != "" {
		l = l.Str("service", o.Service)
	}
	return l.Logger()
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && (isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd()))
}

// Watermill adapts a zerolog logger to watermill. Watermill's Info is chatty
// (every subscriber start, every router state change), so it maps to Debug.
func Watermill(l zerolog.Logger) watermill.LoggerAdapter { return wmLogger{l: l} }

type wmLogger struct{ l zerolog.Logger }

func (w wmLogger) fields(e *zerolog.Event, f watermill.LogFields) *zerolog.Event {
	for k, v := range f {
		e = e.Interface(k, v)
	}
	return e
}

func (w wmLogger) Error(msg string, err error, f watermill.LogFields) {
	w.fields(w.l.Error().Err(err), f).Msg(msg)
}
func (w wmLogger) Info(msg string, f watermill.LogFields)  { w.fields(w.l.Debug(), f).Msg(msg) }
func (w wmLogger) Debug(msg string, f watermill.LogFields) { w.fields(w.l.Trace(), f).Msg(msg) }
func (w wmLogger) Trace(msg string, f watermill.LogFields) { w.fields(w.l.Trace(), f).Msg(msg) }
func (w wmLogger) With(f watermill.LogFields) watermill.LoggerAdapter {
	c := w.l.With()
	for k, v := range f {
		c = c.Interface(k, v)
	}
	return wmLogger{l: c.Logger()}
}
