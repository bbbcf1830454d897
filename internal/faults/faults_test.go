package faults_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
	"testing"

	"github.com/inlet-dev/inlet/internal/faults"
)

type sqlError string

func (e sqlError) Error() string    { return "sql error " + string(e) }
func (e sqlError) SQLState() string { return string(e) }

func TestTransient(t *testing.T) {
	dial := &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"plain", errors.New("column \"x\" does not exist"), false},
		{"marked", faults.Unavailable(errors.New("stream unavailable")), true},
		{"marked deep", fmt.Errorf("phase: %w", faults.Unavailable(errors.New("x"))), true},
		{"refused", fmt.Errorf("store: %w", dial), true},
		{"reset", fmt.Errorf("read: %w", syscall.ECONNRESET), true},
		{"broken pipe", syscall.EPIPE, true},
		{"dns", &net.DNSError{Err: "no such host", Name: "pg", IsTimeout: true}, true},
		{"admin shutdown", fmt.Errorf("copy: %w", sqlError("57P01")), true},
		{"starting up", sqlError("57P03"), true},
		{"connection failure", sqlError("08006"), true},
		{"protocol violation", sqlError("08P01"), false},
		{"too many connections", sqlError("53300"), true},
		{"deadlock", sqlError("40P01"), true},
		{"unique violation", sqlError("23505"), false},
		{"undefined table", sqlError("42P01"), false},
		{"canceled", context.Canceled, false},
		{"eof", io.EOF, false},
	} {
		if got := faults.Transient(tc.err); got != tc.want {
			t.Errorf("%s: Transient(%v) = %v, want %v", tc.name, tc.err, got, tc.want)
		}
	}
	if faults.Unavailable(nil) != nil {
		t.Error("Unavailable(nil) must stay nil")
	}
}
