package events

import (
	"errors"
	"net/http"
	"strconv"
	"testing"
	"time"
)

// The signature is HMAC-SHA256 of "<timestamp>.<body>", hex, after "v1=":
// the value below was computed outside Go (Python's hmac module).
func TestWebhookSignatureIsTheDocumentedHMAC(t *testing.T) {
	got := WebhookSignature("whsec_test", 1767225600, []byte(`{"id":"e1"}`))
	if want := "v1=454f7f9597bf74f9ee7b13eab0ac98e91665e9039d783864ee4129a0f2c9c88f"; got != want {
		t.Errorf("signature %s, want %s", got, want)
	}
}

func TestVerifyWebhook(t *testing.T) {
	body := []byte(`{"id":"e1"}`)
	now := time.Unix(1767225600, 0)
	signed := func(ts int64, sigs string) http.Header {
		h := http.Header{}
		h.Set(WebhookTimestampHeader, strconv.FormatInt(ts, 10))
		h.Set(WebhookSignatureHeader, sigs)
		return h
	}
	good := WebhookSignature("s", now.Unix(), body)
	for _, tc := range []struct {
		name   string
		header http.Header
		body   []byte
		secret string
		want   error
	}{
		{"valid", signed(now.Unix(), good), body, "s", nil},
		{"one of several valid (a rotation)", signed(now.Unix(), "v1=00, "+good), body, "s", nil},
		{"wrong secret", signed(now.Unix(), good), body, "t", ErrWebhookSignature},
		{"body changed", signed(now.Unix(), good), []byte(`{"id":"e2"}`), "s", ErrWebhookSignature},
		{"timestamp changed", signed(now.Unix()+1, good), body, "s", ErrWebhookSignature},
		{"too old", signed(now.Unix()-600, WebhookSignature("s", now.Unix()-600, body)), body, "s", ErrWebhookTimestamp},
		{"no timestamp", http.Header{WebhookSignatureHeader: {good}}, body, "s", ErrWebhookTimestamp},
		{"no signature", signed(now.Unix(), ""), body, "s", ErrWebhookSignature},
	} {
		if err := VerifyWebhook(tc.secret, tc.header, tc.body, 5*time.Minute, now); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
}
