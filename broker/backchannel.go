package broker

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/latchkeyid/latchkey/broker/token"
	"github.com/latchkeyid/latchkey/session"
	"github.com/latchkeyid/latchkey/storage"
)

// Back-channel delivery defaults: four attempts, waiting 1 s, 2 s and
// 4 s between them (about 7 s in all, well inside the logout token's two
// minutes).
const (
	DefaultBackchannelAttempts = 4
	DefaultBackchannelBackoff  = time.Second
	// backchannelAttemptTimeout bounds one POST (the HTTP client has its
	// own, usually shorter, timeout too).
	backchannelAttemptTimeout = 15 * time.Second
)

// backchannel delivers logout tokens in the background.
type backchannel struct {
	attempts int
	backoff  time.Duration
	wg       sync.WaitGroup
}

// sendBackchannelLogout signs a logout token for every client of the
// ended session with a backchannel_logout_uri and delivers each in the
// background (OpenID Connect Back-Channel Logout 1.0 §2.5), through the
// hardened HTTP client, retrying a failed delivery a few times with
// backoff. The answer to the user does not wait for the clients;
// WaitLogoutDeliveries does.
func (b *Broker) sendBackchannelLogout(ctx context.Context, sess session.Session, clients []storage.Client) {
	for _, c := range clients {
		if c.BackchannelLogoutURI == "" {
			continue
		}
		tok, jti, err := b.tokens.LogoutToken(ctx, token.Logout{ClientID: c.ID, Alg: c.IDTokenSignedAlg, Subject: sess.UserID, SID: sess.SID})
		if err != nil {
			b.log.ErrorContext(ctx, "sign logout token", slog.String("client_id", c.ID), slog.Any("error", err))
			continue
		}
		// The delivery outlives the request that ended the session.
		dctx := context.WithoutCancel(ctx)
		b.bc.wg.Go(func() { b.deliverLogoutToken(dctx, c.ID, c.BackchannelLogoutURI, tok, jti, sess) })
	}
}

// deliverLogoutToken POSTs one logout token until the client answers 2xx,
// answers a 4xx other than 408 and 429 (it refused the token: retrying
// will not help), or the attempts are spent. A final failure is logged and
// audited (logout.backchannel_failed); the token itself never is.
func (b *Broker) deliverLogoutToken(ctx context.Context, clientID, uri, tok, jti string, sess session.Session) {
	var last string
	for attempt := 1; attempt <= b.bc.attempts; attempt++ {
		status, err := b.postLogoutToken(ctx, uri, tok)
		switch {
		case err == nil && status/100 == 2:
			b.log.DebugContext(ctx, "back-channel logout delivered", slog.String("client_id", clientID), slog.Int("attempt", attempt))
			return
		case err != nil:
			last = err.Error()
		default:
			last = fmt.Sprintf("HTTP %d", status)
		}
		retry := err != nil || status >= 500 || status == http.StatusRequestTimeout || status == http.StatusTooManyRequests
		b.log.WarnContext(ctx, "back-channel logout attempt failed", slog.String("client_id", clientID),
			slog.Int("attempt", attempt), slog.String("error", last), slog.Bool("retry", retry && attempt < b.bc.attempts))
		if !retry || attempt == b.bc.attempts {
			break
		}
		t := time.NewTimer(b.bc.backoff << (attempt - 1))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
	b.audit(ctx, storage.Event{Type: "logout.backchannel_failed", Actor: "system", UserID: sess.UserID, ClientID: clientID,
		ConnectorID: sess.ConnectorID, Data: map[string]any{"sid": sess.SID, "jti": jti, "error": last}})
}

// postLogoutToken sends the logout_token form and returns the status.
func (b *Broker) postLogoutToken(ctx context.Context, uri, tok string) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, backchannelAttemptTimeout)
	defer cancel()
	body := url.Values{"logout_token": {tok}}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, uri, strings.NewReader(body))
	if err != nil {
		return 0, fmt.Errorf("back-channel logout request: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Cache-Control", "no-store")
	resp, err := b.http.Do(req)
	if err != nil {
		// The error may hold the URI, never the token (it is in the body).
		return 0, fmt.Errorf("back-channel logout POST: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	return resp.StatusCode, nil
}

// WaitLogoutDeliveries waits until every back-channel logout started so
// far has been delivered or has given up, or ctx ends. Tests call it
// before checking a receiver; the CLI calls it before exiting; serve on
// shutdown.
func (b *Broker) WaitLogoutDeliveries(ctx context.Context) error {
	if err := waitGroup(ctx, &b.bc.wg); err != nil {
		return fmt.Errorf("wait for back-channel logout deliveries: %w", err)
	}
	return nil
}

// waitGroup waits for wg, or returns ctx's cause when ctx ends first.
func waitGroup(ctx context.Context, wg *sync.WaitGroup) error {
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}
