package sms

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/latchkeyid/latchkey/internal/clock"
	"github.com/latchkeyid/latchkey/internal/notify"
)

// WebhookOptions configure the webhook sender.
type WebhookOptions struct {
	URL string
	// Secret is the signing secret: "whsec_" then base64 of at least 24
	// random bytes (Standard Webhooks).
	Secret     string
	HTTPClient *http.Client // the hardened client
	Retry      notify.Retry
	Clock      clock.Clock
	Rand       io.Reader
}

// Webhook POSTs {"type":"sms","to":...,"body":...} to a URL, signed as
// Standard Webhooks specify. Every retry of one message carries the same
// webhook-id, so the receiver can drop duplicates.
type Webhook struct {
	o   WebhookOptions
	key []byte
}

var _ Sender = (*Webhook)(nil)

// NewWebhook checks o and returns the sender.
func NewWebhook(o WebhookOptions) (*Webhook, error) {
	var errs []error
	if u, err := url.Parse(o.URL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		errs = append(errs, errors.New("url: not an http(s) URL"))
	}
	key, err := DecodeSecret(o.Secret)
	if err != nil {
		errs = append(errs, fmt.Errorf("secret: %w", err))
	}
	if o.HTTPClient == nil || o.Clock == nil || o.Rand == nil {
		errs = append(errs, errors.New("HTTPClient, Clock and Rand: required"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("sms: webhook: %w", err)
	}
	return &Webhook{o: o, key: key}, nil
}

// DecodeSecret reads a whsec_ secret.
func DecodeSecret(s string) ([]byte, error) {
	rest, ok := strings.CutPrefix(s, "whsec_")
	if !ok {
		return nil, errors.New(`want "whsec_" followed by base64`)
	}
	key, err := base64.StdEncoding.DecodeString(rest)
	if err != nil {
		return nil, errors.New(`want "whsec_" followed by base64`)
	}
	if len(key) < 24 {
		return nil, fmt.Errorf("%d bytes; want at least 24", len(key))
	}
	return key, nil
}

// Sign returns the webhook-signature value for one message:
// "v1," + base64(HMAC-SHA256(key, id + "." + timestamp + "." + body)).
func Sign(key []byte, id string, timestamp int64, body []byte) string {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id + "." + strconv.FormatInt(timestamp, 10) + "."))
	mac.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// Send posts one message.
func (w *Webhook) Send(ctx context.Context, m Message) error {
	body, err := json.Marshal(struct {
		Type string `json:"type"`
		To   string `json:"to"`
		Body string `json:"body"`
	}{"sms", m.To, m.Body})
	if err != nil {
		return fmt.Errorf("%w: encode webhook body: %w", notify.ErrSendFailed, err)
	}
	idb := make([]byte, 16)
	if _, err := io.ReadFull(w.o.Rand, idb); err != nil {
		return fmt.Errorf("%w: webhook id: %w", notify.ErrSendFailed, err)
	}
	id := "msg_" + base64.RawURLEncoding.EncodeToString(idb)
	return w.o.Retry.Do(ctx, "sms via webhook", func(ctx context.Context) error {
		ts := w.o.Clock.Now().Unix()
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.o.URL, bytes.NewReader(body))
		if err != nil {
			return notify.Permanent(fmt.Errorf("build request: %w", err))
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("webhook-id", id)
		req.Header.Set("webhook-timestamp", strconv.FormatInt(ts, 10))
		req.Header.Set("webhook-signature", Sign(w.key, id, ts, body))
		resp, err := w.o.HTTPClient.Do(req)
		if err != nil {
			return fmt.Errorf("webhook: %w", scrub(err))
		}
		return answer("webhook", resp)
	})
}
