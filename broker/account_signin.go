package broker

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/latchkeyid/latchkey/broker/oauth2"
	"github.com/latchkeyid/latchkey/mfa/policy"
	"github.com/latchkeyid/latchkey/session"
	"github.com/latchkeyid/latchkey/storage"
)

// Signing in to the account page (docs/accounts.md, docs/decisions.md).
// GET /account without a session starts an ordinary authorization
// request of the reserved first-party public client latchkey-account,
// with PKCE (S256) and its one redirect URI {issuer}/account/callback:
// the login page, upstream connectors, second factors and every policy
// apply as for any sign-in. The state is random, kept in a cookie of
// the browser (and the verifier in the ephemeral store under the
// state's hash), so a callback from another browser is refused. The
// callback checks the state and iss, redeems the code at the token
// endpoint's own code (PKCE, single use) and sends the browser to
// /account, a fixed path: there is no return URL to abuse.

// AccountClientID is the reserved built-in client of the account page.
const AccountClientID = "latchkey-account"

// PathAccountCallback is the account client's redirect URI path.
const PathAccountCallback = "/account/callback"

// accountSignInKey keeps a sign-in's PKCE verifier under its state's hash.
func accountSignInKey(state string) string { return "account-signin:" + sha256Hex(state) }

// AccountClient is the built-in client record: public, PKCE, first
// party (no consent page), authorization_code only (no refresh token).
func (b *Broker) AccountClient() storage.Client {
	yes := true
	now := b.now()
	return storage.Client{ID: AccountClientID, Name: "Account console", Public: true,
		RedirectURIs: []string{b.issuer + PathAccountCallback}, GrantTypes: []string{oauth2.GrantTypeAuthorizationCode}, ResponseTypes: []string{"code"},
		TokenEndpointAuthMethod: "none", ApplicationType: "web", IDTokenSignedAlg: "RS256", RequirePKCE: &yes, FirstParty: &yes,
		Audience: []string{b.issuer}, ConfigManaged: true, CreatedAt: now, UpdatedAt: now}
}

// EnsureAccountClient creates or updates the built-in account client
// (serve calls it at start when the account pages are on).
func (b *Broker) EnsureAccountClient(ctx context.Context) error {
	want := b.AccountClient()
	err := b.store.Tx(ctx, func(ctx context.Context, tx storage.Durable) error {
		err := tx.UpdateClient(ctx, AccountClientID, func(old storage.Client) (storage.Client, error) {
			next := want
			next.CreatedAt = old.CreatedAt
			return next, nil
		})
		if errors.Is(err, storage.ErrNotFound) {
			err = tx.CreateClient(ctx, want)
		}
		return err
	})
	if errors.Is(err, storage.ErrConflict) { // another replica, at the same moment
		err = nil
	}
	if err != nil {
		return fmt.Errorf("account page client: %w", err)
	}
	return nil
}

// AccountSignIn starts a sign-in to the account page: it returns the
// state (for the browser's cookie) and the authorization URL to send the
// browser to.
func (b *Broker) AccountSignIn(ctx context.Context) (state, authorizeURL string, perr *PageError) {
	if b.acct == nil {
		return "", "", &PageError{Status: 404, Title: "Not found", Message: "There is no account page here."}
	}
	state, err1 := b.randomToken(32)
	verifier, err2 := b.randomToken(32)
	if err := errors.Join(err1, err2); err != nil {
		return "", "", &PageError{Status: 500, Title: "Server error", Message: "Something went wrong on our side. Please try again.", Err: err}
	}
	if err := b.eph.Put(ctx, accountSignInKey(state), []byte(verifier), b.reqTTL); err != nil {
		return "", "", &PageError{Status: 500, Title: "Server error", Message: "Something went wrong on our side. Please try again.", Err: fmt.Errorf("store account sign-in: %w", err)}
	}
	sum := sha256.Sum256([]byte(verifier))
	q := url.Values{
		"client_id": {AccountClientID}, "redirect_uri": {b.issuer + PathAccountCallback}, "response_type": {"code"},
		"scope": {"openid"}, "state": {state},
		"code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"},
	}
	return state, b.issuer + PathAuthorize + "?" + q.Encode(), nil
}

var errAccountSignInNotRecognised = &PageError{Status: 400, Title: "Sign-in not recognised",
	Message: "This sign-in was started in another browser or has expired. Open your account page again."}

// AccountSignInCallback finishes a sign-in to the account page at
// /account/callback: query is the authorization response, cookieState
// the state the browser kept. It checks the state (this browser's, once)
// and iss, and redeems the code with the verifier; the browser's session
// (cookie) must be the one the code was issued for. nil: go to /account.
func (b *Broker) AccountSignInCallback(ctx context.Context, query url.Values, cookieState, cookie string, meta RequestMeta) *PageError {
	if b.acct == nil {
		return &PageError{Status: 404, Title: "Not found", Message: "There is no account page here."}
	}
	state := query.Get("state")
	if state == "" || len(state) > 128 || subtle.ConstantTimeCompare([]byte(state), []byte(cookieState)) != 1 {
		return withCause(errAccountSignInNotRecognised, errors.New("account sign-in: state is not this browser's"))
	}
	verifier, err := b.eph.Take(ctx, accountSignInKey(state))
	if errors.Is(err, storage.ErrNotFound) {
		return withCause(errAccountSignInNotRecognised, errors.New("account sign-in: unknown or used state"))
	}
	if err != nil {
		return &PageError{Status: 500, Title: "Server error", Message: "Something went wrong on our side. Please try again.", Err: err}
	}
	if iss := query.Get("iss"); iss != b.issuer {
		return withCause(errAccountSignInNotRecognised, fmt.Errorf("account sign-in: iss %q", truncate(iss, 100)))
	}
	if code := query.Get("error"); code != "" {
		return &PageError{Status: 400, Title: "Sign-in cancelled", Message: "You are not signed in. Open your account page to try again.",
			Err: fmt.Errorf("account sign-in: authorization error %q", truncate(code, 64))}
	}
	form := url.Values{"grant_type": {oauth2.GrantTypeAuthorizationCode}, "code": {query.Get("code")},
		"redirect_uri": {b.issuer + PathAccountCallback}, "code_verifier": {string(verifier)}, "client_id": {AccountClientID}}
	resp, oerr := b.Token(ctx, form, ClientCredentials{FormID: AccountClientID}, meta)
	if oerr != nil {
		return &PageError{Status: 400, Title: "Sign-in failed", Message: "The sign-in could not be completed. Open your account page to try again.", Err: oerr}
	}
	sess, err := b.sessions.Get(ctx, cookie)
	if err != nil || sess.UserID != idTokenSubject(resp.IDToken) {
		return withCause(errAccountSignInNotRecognised, fmt.Errorf("account sign-in: the browser's session is not the code's (%v)", err))
	}
	if u, err := b.acct.Users.GetUser(ctx, sess.UserID); err != nil || u.Disabled {
		return &PageError{Status: 403, Title: "Account disabled", Message: "Your account is disabled. Contact your administrator.", Err: fmt.Errorf("account sign-in: user %q disabled or gone (%v)", sess.UserID, err)}
	}
	return nil
}

// errAccountSecondFactor: the session does not meet the account
// client's second-factor policy.
var errAccountSecondFactor = errors.New("account page: the session lacks the second factor the account client asks")

// accountSessionComplete checks that sess meets what a sign-in to the
// account page asks (the MFA policy of the account client, as the
// dispatcher's secondFactor evaluates it): the SSO session exists as
// soon as the first factor is checked, before /mfa asks the second, and
// must not open the account page (remove or add factors, change the
// address) on a password alone.
func (b *Broker) accountSessionComplete(ctx context.Context, sess session.Session, u storage.User) error {
	if b.mfa == nil {
		return nil
	}
	creds, err := b.mfa.Store.ListMFACredentials(ctx, u.ID)
	if err != nil {
		return fmt.Errorf("account page: list second factors: %w", err)
	}
	d, err := b.mfa.Policy.Evaluate(policy.Input{ClientID: AccountClientID, ConnectorID: sess.ConnectorID, Groups: u.Groups,
		Enrolled: usableTypes(creds), Steps: toMFASteps(sess.AllSteps())})
	switch {
	case err != nil:
		return fmt.Errorf("account page: mfa policy: %w", err)
	case d.Action != policy.Allow:
		return fmt.Errorf("%w (%s)", errAccountSecondFactor, d.Action)
	}
	return nil
}

func withCause(p *PageError, err error) *PageError {
	c := *p
	c.Err = err
	return &c
}

// idTokenSubject reads sub from an ID token the broker just issued in
// this process (no signature check needed: it never left).
func idTokenSubject(jwt string) string {
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		return ""
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return ""
	}
	var c struct {
		Sub string `json:"sub"`
	}
	if json.Unmarshal(raw, &c) != nil {
		return ""
	}
	return c.Sub
}
