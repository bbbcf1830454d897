package webhooks

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/rs/zerolog"

	"github.com/inlet-dev/inlet/events"
	"github.com/inlet-dev/inlet/internal/faults"
	"github.com/inlet-dev/inlet/internal/store"
	"github.com/inlet-dev/inlet/internal/textlimit"
	"github.com/inlet-dev/inlet/internal/topology"
)

// Outcomes of an attempt, as Observer hears them.
const (
	OutcomeDelivered = "delivered" // a 2xx answer
	OutcomeRetrying  = "retrying"  // failed; tried again later
	OutcomeFailed    = "failed"    // failed, and the retry window is over
)

// Observer hears of every attempt (the metrics).
type Observer interface {
	WebhookAttempt(outcome string)
}

// UserAgent is the User-Agent of every delivery.
const UserAgent = "Inlet-Webhooks/1"

// maxAnswer is how much of an answer's body is read (and quoted in the
// delivery log when the status is not 2xx); the rest is never read.
const maxAnswer = 4 << 10

// quotedAnswer is how much of a failed answer's body the log keeps.
const quotedAnswer = 256

// Dispatcher sends the deliveries that are due: it claims them from the
// store (at most one of a subscription at a time), POSTs each, and records
// the result. Every replica may run one; claims never overlap.
type Dispatcher struct {
	Store store.WebhookStore
	// Policy's fields that are not positive take DefaultPolicy's.
	Policy   Policy
	Log      zerolog.Logger
	Observer Observer
	// Client sends the requests (default NewClient(Policy.Timeout)).
	Client *http.Client
	// Now is the clock (default time.Now).
	Now func() time.Time

	once sync.Once
	kick chan struct{}
}

// NewClient is the HTTP client of deliveries: every attempt bounded by
// timeout, and redirects not followed (a subscription names the URL that
// receives its events; a redirect, to whatever host, is an answer that
// fails the attempt); with blockPrivate, no connection to an address that
// is not public (Policy.BlockPrivate).
func NewClient(timeout time.Duration, blockPrivate bool) *http.Client {
	dialer := &net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}
	if blockPrivate {
		dialer.Control = refusePrivate
	}
	return &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           dialer.DialContext,
			TLSHandshakeTimeout:   timeout,
			ResponseHeaderTimeout: timeout,
			MaxIdleConnsPerHost:   4,
			IdleConnTimeout:       90 * time.Second,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

func (d *Dispatcher) init() {
	d.once.Do(func() {
		d.Policy = d.Policy.withDefaults()
		d.kick = make(chan struct{}, 1)
		if d.Client == nil {
			d.Client = NewClient(d.Policy.Timeout, d.Policy.BlockPrivate)
		}
		if d.Now == nil {
			d.Now = time.Now
		}
	})
}

// Kick makes the dispatcher look for due deliveries now (a new event).
func (d *Dispatcher) Kick() {
	d.init()
	select {
	case d.kick <- struct{}{}:
	default:
	}
}

// Run dispatches until ctx ends, then waits for the attempts under way:
// each is bounded by the policy's timeout, and its result is recorded.
func (d *Dispatcher) Run(ctx context.Context) {
	d.init()
	var (
		mu       sync.Mutex
		inFlight = map[string]bool{} // webhook ids with an attempt under way
		wg       sync.WaitGroup
	)
	defer wg.Wait()
	poll := time.NewTicker(d.Policy.PollEvery)
	defer poll.Stop()
	prune := time.NewTicker(pruneEvery)
	defer prune.Stop()
	d.prune(ctx)
	for {
		mu.Lock()
		free := d.Policy.Concurrency - len(inFlight)
		busy := make([]string, 0, len(inFlight))
		for id := range inFlight {
			busy = append(busy, id)
		}
		mu.Unlock()
		claimed := 0
		if free > 0 {
			now := d.Now()
			ds, err := d.Store.ClaimDeliveries(ctx, now, now.Add(d.Policy.Lease()), free, busy)
			if err != nil && ctx.Err() == nil {
				level := d.Log.Error()
				if faults.Transient(err) {
					level = d.Log.Warn()
				}
				level.Err(err).Msg("webhooks: claiming due deliveries failed; trying again at the next poll")
			}
			claimed = len(ds)
			for _, del := range ds {
				mu.Lock()
				inFlight[del.WebhookID] = true
				mu.Unlock()
				wg.Add(1)
				go func() {
					defer wg.Done()
					// The attempt outlives a shutdown: its result is recorded
					// rather than left to the lease.
					d.attempt(context.WithoutCancel(ctx), del)
					mu.Lock()
					delete(inFlight, del.WebhookID)
					mu.Unlock()
					d.Kick()
				}()
			}
		}
		if claimed > 0 && claimed == free {
			continue // more may be due
		}
		select {
		case <-ctx.Done():
			return
		case <-d.kick:
		case <-poll.C:
		case <-prune.C:
			d.prune(ctx)
		}
	}
}

// pruneEvery is how often the log is pruned; pruneBatch how many
// deliveries one statement deletes at most (a short transaction).
const (
	pruneEvery = 10 * time.Minute
	pruneBatch = 1000
)

// ExpiredWhileDisabled is the last error of a delivery failed by prune.
const ExpiredWhileDisabled = "the retry window ended while the webhook was disabled"

// prune fails the deliveries a disabled webhook kept pending past their
// retry window (nothing attempts them, so nothing else would), and deletes
// the deliveries that ended longer than LogRetention ago.
func (d *Dispatcher) prune(ctx context.Context) {
	if _, err := d.Store.ExpireDeliveries(ctx, d.Now().Add(-d.Policy.RetryWindow), ExpiredWhileDisabled); err != nil {
		d.Log.Warn().Err(err).Msg("webhooks: failing the expired deliveries of disabled webhooks failed; trying again later")
	}
	before := d.Now().Add(-d.Policy.LogRetention)
	for ctx.Err() == nil {
		n, err := d.Store.PruneDeliveries(ctx, before, pruneBatch)
		if err != nil {
			d.Log.Warn().Err(err).Msg("webhooks: pruning the delivery log failed; trying again later")
			return
		}
		if n < pruneBatch {
			return
		}
	}
}

// attempt sends del once and records the result, within the lease: past
// it, the delivery is another attempt's and this one's result is dropped.
func (d *Dispatcher) attempt(ctx context.Context, del store.Delivery) {
	ctx, cancel := context.WithTimeout(ctx, d.Policy.Lease())
	defer cancel()
	log := d.Log.With().Str("delivery_id", del.ID).Str("webhook_id", del.WebhookID).Str("event_id", del.EventID).
		Int("attempt", del.Attempts).Logger()
	hook, err := d.Store.GetWebhook(ctx, del.Org, del.WebhookID)
	if errors.Is(err, store.ErrNotFound) {
		return // deleted meanwhile, with its deliveries
	}
	if err != nil {
		log.Warn().Err(err).Msg("webhooks: reading the subscription failed; the delivery is attempted again when its lease ends")
		return
	}
	status, failure := d.send(ctx, hook, del)
	now := d.Now()
	a := store.Attempt{Status: status, Error: failure, At: now, State: store.DeliveryDelivered, NextAttemptAt: now}
	outcome := OutcomeDelivered
	if failure != "" {
		next, retry := d.Policy.Next(del.CreatedAt, now, del.Attempts)
		a.State, a.NextAttemptAt, outcome = store.DeliveryPending, next, OutcomeRetrying
		if !retry {
			a.State, outcome = store.DeliveryFailed, OutcomeFailed
		}
	}
	reason := fmt.Sprintf("%d attempts in a row failed, the last: %s", d.Policy.DisableAfter, failure)
	after, recorded, err := d.Store.FinishAttempt(ctx, del, a, d.Policy.DisableAfter, textlimit.Clip(reason, 512))
	switch {
	case err != nil:
		log.Warn().Err(err).Msg("webhooks: recording an attempt failed; the delivery is attempted again when its lease ends")
		return
	case !recorded:
		log.Info().Msg("webhooks: an attempt ended after its delivery moved on (lease over, or deleted); its result is dropped")
		return
	}
	if d.Observer != nil {
		d.Observer.WebhookAttempt(outcome)
	}
	ev := log.Debug()
	if failure != "" {
		ev = log.Info().Str("error", failure).Time("next_attempt_at", a.NextAttemptAt)
	}
	ev.Int("status", status).Str("outcome", outcome).Msg("webhooks: attempt")
	if after.Disabled && failure != "" && after.Failures == d.Policy.DisableAfter {
		log.Warn().Str("url", hook.URL).Msg("webhooks: subscription disabled: " + after.DisabledReason)
	}
}

// send POSTs del to hook: the status of the answer, and why the attempt
// failed ("" when it succeeded).
func (d *Dispatcher) send(ctx context.Context, hook store.Webhook, del store.Delivery) (status int, failure string) {
	ctx, cancel := context.WithTimeout(ctx, d.Policy.Timeout)
	defer cancel()
	req, err := NewRequest(ctx, hook, del, d.Now())
	if err != nil {
		return 0, err.Error()
	}
	resp, err := d.Client.Do(req)
	if err != nil {
		return 0, describe(err, d.Policy.Timeout)
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return resp.StatusCode, ""
	case resp.StatusCode >= 300 && resp.StatusCode < 400:
		return resp.StatusCode, fmt.Sprintf("HTTP %d: redirects are not followed (to %s): subscribe the final URL",
			resp.StatusCode, textlimit.Quote(resp.Header.Get("Location")))
	}
	msg := "HTTP " + strconv.Itoa(resp.StatusCode)
	if len(answer) > 0 {
		msg += ": " + textlimit.Clip(string(answer), quotedAnswer)
	}
	return resp.StatusCode, msg
}

// NewRequest is the request of one attempt of del to hook, signed at now.
func NewRequest(ctx context.Context, hook store.Webhook, del store.Delivery, now time.Time) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, hook.URL, bytes.NewReader(del.Payload))
	if err != nil {
		return nil, fmt.Errorf("the URL cannot be requested: %v", err)
	}
	ts := now.Unix()
	h := req.Header
	h.Set("Content-Type", events.ContentType)
	h.Set("User-Agent", UserAgent)
	h.Set(events.WebhookIDHeader, del.EventID)
	h.Set(events.WebhookTypeHeader, del.EventType)
	h.Set(events.WebhookDeliveryHeader, del.ID)
	h.Set(events.WebhookAttemptHeader, strconv.Itoa(del.Attempts))
	h.Set(events.WebhookTimestampHeader, strconv.FormatInt(ts, 10))
	h.Set(events.WebhookSignatureHeader, events.WebhookSignature(hook.Secret, ts, del.Payload))
	return req, nil
}

// ErrPrivateAddress is a connection refused by Policy.BlockPrivate.
var ErrPrivateAddress = errors.New("not a public address (INLET_WEBHOOK_BLOCK_PRIVATE)")

// refusePrivate is a dialer's Control: it sees the address about to be
// connected to, after name resolution, so no DNS answer can get around it
// (a proxy, when one is set, is what is dialled).
func refusePrivate(_, address string, _ syscall.RawConn) error {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return err
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return fmt.Errorf("%s: %w", address, err)
	}
	ip = ip.Unmap()
	if ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() || ip.IsUnspecified() ||
		ip.IsMulticast() || ip.IsInterfaceLocalMulticast() || cgnat.Contains(ip) {
		return fmt.Errorf("%s: %w", ip, ErrPrivateAddress)
	}
	return nil
}

// cgnat is the shared address space of carrier-grade NAT (RFC 6598), which
// netip does not count as private.
var cgnat = netip.MustParsePrefix("100.64.0.0/10")

// describe says why a request got no answer, without the URL (the log
// names the subscription) and bounded.
func describe(err error, timeout time.Duration) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Sprintf("no answer within %s", timeout)
	}
	return textlimit.Clip("no answer: "+err.Error(), 512)
}

// Consumer turns the events of INLET_EVENTS into deliveries.
type Consumer struct {
	Store store.WebhookStore
	Log   zerolog.Logger
	// Delivered is told when deliveries were added (the dispatcher's Kick).
	Delivered func()
}

// Handler stores one delivery of the event for each subscription of its
// organization that wants it, and was created before it was published: a
// subscription hears of what happens after it exists, however far back the
// consumer starts. Redelivered, it adds nothing (the delivery ids are the
// same); it returns an error, and the message is redelivered, only when
// the store failed.
func (c *Consumer) Handler() message.NoPublishHandlerFunc {
	return func(msg *message.Message) error {
		subject := msg.Metadata.Get(topology.MetaSubject)
		org, _, event, err := events.ParseSubject(subject)
		if err != nil || !slices.Contains(events.WebhookEvents, event) {
			return nil // requests and commands are no webhook's business
		}
		ce, err := events.Decode(msg.Payload)
		if err != nil || ce.ID == "" {
			c.Log.Error().Err(err).Str("subject", subject).Msg("webhooks: an event without an id is not delivered")
			return nil
		}
		ctx := msg.Context()
		var hooks []store.Webhook
		err = faults.DefaultBackoff.WaitOut(ctx, func() (err error) {
			hooks, err = c.Store.ListWebhooks(ctx, org, "", MaxPerOrg*2)
			return err
		}, c.waiting)
		if err != nil {
			return err
		}
		var ds []store.Delivery
		for _, h := range hooks {
			if !Wants(h, event) || ce.Time.Before(h.CreatedAt) {
				continue
			}
			ds = append(ds, store.Delivery{ID: DeliveryID(h.ID, ce.ID), WebhookID: h.ID, Org: org, EventID: ce.ID,
				EventType: event, ImportID: ce.Subject, Payload: msg.Payload, NextAttemptAt: time.Now()})
		}
		if len(ds) == 0 {
			return nil
		}
		var added int
		err = faults.DefaultBackoff.WaitOut(ctx, func() (err error) {
			added, err = c.Store.AddDeliveries(ctx, ds)
			return err
		}, c.waiting)
		if err != nil {
			return err
		}
		if added > 0 && c.Delivered != nil {
			c.Delivered()
		}
		return nil
	}
}

func (c *Consumer) waiting(err error, attempt int, wait time.Duration) {
	c.Log.Warn().Err(err).Int("attempt", attempt).Dur("retry_in", wait).
		Msg("webhooks: transient fault; waiting it out, the event's delivery is kept")
}
