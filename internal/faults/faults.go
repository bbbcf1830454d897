// Package faults tells a transient fault (a server restarting, a network
// blip: waiting cures it) from a failure (retrying does not). The delivery
// policy waits out the first with backoff instead of spending a message's
// deliveries on it.
package faults

import (
	"context"
	"errors"
	"net"
	"strings"
	"syscall"
	"time"
)

// Unavailable marks err as transient: an adapter that knows its technology
// says so where the generic rules below cannot tell.
func Unavailable(err error) error {
	if err == nil {
		return nil
	}
	return &unavailable{err}
}

type unavailable struct{ err error }

func (u *unavailable) Error() string { return u.err.Error() }
func (u *unavailable) Unwrap() error { return u.err }

// transientErrnos are the socket errors of a server that is down, restarting
// or unreachable for now.
var transientErrnos = []syscall.Errno{
	syscall.ECONNREFUSED, syscall.ECONNRESET, syscall.ECONNABORTED, syscall.EPIPE,
	syscall.ETIMEDOUT, syscall.EHOSTUNREACH, syscall.ENETUNREACH, syscall.ENETDOWN,
}

// Transient reports whether err is worth waiting out.
func Transient(err error) bool {
	if err == nil {
		return false
	}
	var u *unavailable
	if errors.As(err, &u) {
		return true
	}
	for _, errno := range transientErrnos {
		if errors.Is(err, errno) {
			return true
		}
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	var opErr *net.OpError
	if errors.As(err, &opErr) {
		return true // a dial or read that failed on the network, whatever the errno
	}
	var sqlErr interface{ SQLState() string }
	if errors.As(err, &sqlErr) {
		return transientSQLState(sqlErr.SQLState())
	}
	return false
}

// transientSQLState: the SQLSTATEs of a database that is restarting,
// unreachable, out of connections, or that chose this transaction as a
// victim (PostgreSQL appendix A).
func transientSQLState(code string) bool {
	switch {
	case code == "08P01": // protocol violation: a bug, not an outage
		return false
	case strings.HasPrefix(code, "08"): // connection exception
		return true
	}
	switch code {
	case "57P01", "57P02", "57P03", // admin shutdown, crash shutdown, cannot connect now
		"53300",          // too many connections
		"40001", "40P01": // serialization failure, deadlock
		return true
	}
	return false
}

// Backoff is how long to wait after a transient fault: First after the
// first, twice as long after each next one, never more than Max.
type Backoff struct {
	First, Max time.Duration
}

// DefaultBackoff waits 250ms, then up to 10s between tries.
var DefaultBackoff = Backoff{First: 250 * time.Millisecond, Max: 10 * time.Second}

// WaitOut runs fn until it returns nil or an error that is not Transient, or
// ctx ends (then fn's last error). Before each wait it calls onWait, if set.
// An outage lasts as long as it lasts: there is no bound on the tries.
func (b Backoff) WaitOut(ctx context.Context, fn func() error, onWait func(err error, attempt int, wait time.Duration)) error {
	for attempt := 1; ; attempt++ {
		err := fn()
		if !Transient(err) {
			return err
		}
		wait := b.Wait(attempt)
		if onWait != nil {
			onWait(err, attempt, wait)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
	}
}

// Wait is how long to wait after the attempt-th failure in a row (from 1).
func (b Backoff) Wait(attempt int) time.Duration {
	if b.First <= 0 {
		b = DefaultBackoff
	}
	wait := b.First
	for range attempt - 1 {
		if wait = 2 * wait; wait >= b.Max {
			return max(b.Max, b.First)
		}
	}
	return wait
}
