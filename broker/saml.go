package broker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/latchkeyid/latchkey/broker/oauth2"
	"github.com/latchkeyid/latchkey/internal/clock"
	"github.com/latchkeyid/latchkey/providers"
	samlconn "github.com/latchkeyid/latchkey/providers/saml"
	"github.com/latchkeyid/latchkey/storage"
)

// PathSAMLPrefix is where a saml connector's SP endpoints live:
// /saml/{connector}/metadata, /acs and /slo (providers/saml Paths).
const PathSAMLPrefix = "/saml/"

// SAMLReplayCache is the saml connector's replay cache on the ephemeral
// store: an assertion ID is created (insert if absent) with a TTL up to
// its NotOnOrAfter, so every replica sees it. cmd hands it to the saml
// connector type.
type SAMLReplayCache struct {
	eph   storage.Ephemeral
	clock clock.Clock
}

var _ samlconn.ReplayCache = (*SAMLReplayCache)(nil)

// NewSAMLReplayCache returns the replay cache over eph.
func NewSAMLReplayCache(eph storage.Ephemeral, clk clock.Clock) *SAMLReplayCache {
	if clk == nil {
		clk = clock.Real{}
	}
	return &SAMLReplayCache{eph: eph, clock: clk}
}

// Seen records key until `until` and reports whether it was recorded
// already. Keys are hashed: assertion IDs are chosen by the IdP.
func (c *SAMLReplayCache) Seen(ctx context.Context, key string, until time.Time) (bool, error) {
	ttl := until.Sub(c.clock.Now())
	if ttl < time.Second {
		ttl = time.Second
	}
	err := c.eph.Create(ctx, "saml-assertion:"+sha256Hex(key), []byte{1}, ttl)
	switch {
	case errors.Is(err, storage.ErrConflict):
		return true, nil
	case err != nil:
		return false, fmt.Errorf("record SAML assertion id: %w", err)
	}
	return false, nil
}

// samlState is a SAML login in flight, kept under the hash of its
// RelayState: the auth request it belongs to and the AuthnRequest ID the
// response must answer. The RelayState holds nothing but a random value.
type samlState struct {
	RequestID      string `json:"request_id"`
	ConnectorID    string `json:"connector_id"`
	AuthnRequestID string `json:"authn_request_id"`
	// Account is set, and RequestID empty, for a link started on the
	// account page (account_link.go).
	Account *accountLinkBinding `json:"account,omitempty"`
}

// samlPost is a response posted to the ACS, kept until the same-site GET.
type samlPost struct {
	ConnectorID  string `json:"connector_id"`
	SAMLResponse string `json:"saml_response"`
	RelayState   string `json:"relay_state,omitempty"`
}

// samlLogout is an SP-initiated single logout in flight, under the hash
// of its RelayState: where the browser goes once the IdP answers.
type samlLogout struct {
	ConnectorID string `json:"connector_id"`
	RequestID   string `json:"request_id"`
	Next        string `json:"next,omitempty"`
	ClientName  string `json:"client_name,omitempty"`
	// The LogoutRequest: a URL (HTTP-Redirect) or a form (HTTP-POST).
	RedirectURL string     `json:"redirect_url,omitempty"`
	PostURL     string     `json:"post_url,omitempty"`
	PostFields  url.Values `json:"post_fields,omitempty"`
}

func samlRelayKey(relay string) string  { return "saml-relay:" + sha256Hex(relay) }
func samlPostKey(id string) string      { return "saml-post:" + sha256Hex(id) }
func samlLogoutKey(relay string) string { return "saml-logout:" + sha256Hex(relay) }

// samlConnector returns the open saml connector id.
func (b *Broker) samlConnector(id string) (Upstream, samlconn.Capability, bool) {
	up, ok := b.fed.Connectors.Get(id)
	if !ok {
		return Upstream{}, nil, false
	}
	sc, ok := up.Connector.(samlconn.Capability)
	return up, sc, ok
}

// SAMLMetadata returns the SP metadata of the saml connector id; ok is
// false when there is no such connector.
func (b *Broker) SAMLMetadata(id string) ([]byte, bool, error) {
	_, sc, ok := b.samlConnector(id)
	if !ok {
		return nil, false, nil
	}
	md, err := sc.SPMetadata()
	return md, true, err
}

var samlUnknown = &PageError{Status: http.StatusNotFound, Title: "Not available", Message: "There is no SAML connector at this address."}

// beginSAML sends the browser to the IdP with an AuthnRequest whose
// RelayState finds this auth request again (and nothing else).
func (b *Broker) beginSAML(ctx context.Context, req *AuthRequest, client storage.Client, up Upstream, sc samlconn.Capability, meta RequestMeta) Result {
	ttl := req.CreatedAt.Add(b.reqTTL).Sub(b.now())
	if ttl <= 0 {
		return Result{Page: expiredPage(errRequestExpired)}
	}
	next, upErr, err := b.startSAMLLogin(ctx, sc, samlState{RequestID: req.ID}, slices.Contains(req.Prompt, oauth2.PromptLogin), ttl)
	switch {
	case upErr != nil:
		return b.upstreamFailed(ctx, req, client, up, upErr, meta)
	case err != nil:
		return pageErr(500, "Server error", "Something went wrong on our side. Please try again.", err)
	}
	return Result{Redirect: next}
}

// startSAMLLogin is the start of every SAML login (a sign-in, or a link
// from the account page): an AuthnRequest with a fresh random
// RelayState, and st (completed with the connector and the request's ID)
// stored under the RelayState's hash for ttl. upErr is the connector's
// own failure, err ours.
func (b *Broker) startSAMLLogin(ctx context.Context, sc samlconn.Capability, st samlState, forceAuthn bool, ttl time.Duration) (next *Redirect, upErr, err error) {
	relay, err := b.randomToken(32)
	if err != nil {
		return nil, nil, err
	}
	login, upErr := sc.StartLogin(ctx, samlconn.LoginRequest{RelayState: relay, ForceAuthn: forceAuthn})
	if upErr != nil {
		return nil, upErr, nil
	}
	st.ConnectorID, st.AuthnRequestID = sc.ID(), login.RequestID
	data, err := json.Marshal(st)
	if err == nil {
		err = b.eph.Put(ctx, samlRelayKey(relay), data, ttl)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("store SAML login: %w", err)
	}
	if login.RedirectURL != "" {
		return &Redirect{URI: login.RedirectURL}, nil, nil
	}
	return &Redirect{URI: login.PostURL, Mode: oauth2.ResponseModeFormPost, Params: login.PostFields}, nil, nil
}

// SAMLRefused audits a response refused before it could be read (an
// oversized or unreadable POST) and returns the page to show.
func (b *Broker) SAMLRefused(ctx context.Context, connectorID string, status int, msg string, cause error, meta RequestMeta) *PageError {
	b.auditSAMLFailure(ctx, connectorID, "", "saml "+msg, meta)
	return &PageError{Status: status, Title: "Sign-in failed", Message: "The identity provider's answer was refused: " + msg + ". Go back to the application and start again.", Err: cause}
}

func (b *Broker) auditSAMLFailure(ctx context.Context, connectorID, clientID, reason string, meta RequestMeta) {
	b.audit(ctx, storage.Event{Type: "user.login.failed", ClientID: clientID, ConnectorID: connectorID, IP: meta.IP,
		UserAgent: meta.UserAgent, RequestID: meta.RequestID, Data: map[string]any{"reason": truncate(reason, 200)}})
}

// StoreSAMLPost keeps a response the IdP's page POSTed to the ACS (a
// cross-site POST: the browser sends no SameSite=Lax cookies with it)
// under a fresh random id and returns the same-origin URL to answer 303
// to; the GET there carries the binding cookie and SAMLACS continues.
func (b *Broker) StoreSAMLPost(ctx context.Context, connectorID string, form url.Values, meta RequestMeta) (string, *PageError) {
	if _, _, ok := b.samlConnector(connectorID); !ok {
		return "", samlUnknown
	}
	resp, relay := form.Get("SAMLResponse"), form.Get("RelayState")
	switch {
	case resp == "":
		return "", b.SAMLRefused(ctx, connectorID, http.StatusBadRequest, "it carries no SAMLResponse", nil, meta)
	case len(resp) > samlconn.MaxResponseBytes:
		return "", b.SAMLRefused(ctx, connectorID, http.StatusRequestEntityTooLarge, "it is too large", nil, meta)
	case len(relay) > 80: // saml-bindings §3.4.3; ours are 43 bytes
		return "", b.SAMLRefused(ctx, connectorID, http.StatusBadRequest, "its RelayState is too long", nil, meta)
	}
	id, err := b.randomToken(32)
	if err != nil {
		return "", &PageError{Status: 500, Title: "Server error", Message: "Something went wrong on our side. Please try again.", Err: err}
	}
	data, err := json.Marshal(samlPost{ConnectorID: connectorID, SAMLResponse: resp, RelayState: relay})
	if err == nil {
		err = b.eph.Put(ctx, samlPostKey(id), data, b.codeTTL)
	}
	if err != nil {
		return "", &PageError{Status: 500, Title: "Server error", Message: "Something went wrong on our side. Please try again.", Err: fmt.Errorf("store SAML response: %w", err)}
	}
	return PathSAMLPrefix + url.PathEscape(connectorID) + "/acs?" + url.Values{"resume": {id}}.Encode(), nil
}

// SAMLACS continues a stored ACS POST on our own origin (GET
// /saml/{connector}/acs?resume=ID): the RelayState finds the login (single
// use), the binding cookie must be the browser's that started it, the
// connector checks the response against the AuthnRequest it answers, and
// the user is signed in as through any upstream. A response with no
// login of ours pending is unsolicited: refused unless the connector
// allows IdP-initiated login (samlIdPInitiated).
func (b *Broker) SAMLACS(ctx context.Context, connectorID, binding, resume string, bs BrowserSessions, meta RequestMeta) Result {
	up, sc, ok := b.samlConnector(connectorID)
	if !ok {
		return Result{Page: samlUnknown}
	}
	if resume == "" || len(resume) > 64 {
		return Result{Page: expiredPage(errors.New("SAML ACS GET without a stored response"))}
	}
	raw, err := b.eph.Take(ctx, samlPostKey(resume))
	if errors.Is(err, storage.ErrNotFound) {
		return Result{Page: expiredPage(errors.New("unknown or used SAML response id"))}
	}
	if err != nil {
		return pageErr(500, "Server error", "Something went wrong on our side. Please try again.", err)
	}
	var post samlPost
	if err := json.Unmarshal(raw, &post); err != nil || post.ConnectorID != connectorID {
		return pageErr(400, "Sign-in failed", "The identity provider's answer arrived at the wrong address. Go back to the application and start again.",
			fmt.Errorf("stored SAML response of connector %q at %q (%v)", post.ConnectorID, connectorID, err))
	}
	var st samlState
	found := false
	if post.RelayState != "" {
		data, err := b.eph.Take(ctx, samlRelayKey(post.RelayState))
		switch {
		case err == nil:
			if err := json.Unmarshal(data, &st); err != nil {
				return pageErr(500, "Server error", "Something went wrong on our side. Please try again.", err)
			}
			found = true
		case !errors.Is(err, storage.ErrNotFound):
			return pageErr(500, "Server error", "Something went wrong on our side. Please try again.", err)
		}
	}
	if !found {
		return b.samlIdPInitiated(ctx, up, sc, post, bs, meta)
	}
	if st.ConnectorID != connectorID {
		b.auditSAMLFailure(ctx, connectorID, "", "saml relay_state of another connector", meta)
		return pageErr(400, "Sign-in failed", "The identity provider's answer arrived at the wrong address. Go back to the application and start again.",
			fmt.Errorf("SAML login of connector %q at the ACS of %q", st.ConnectorID, connectorID))
	}
	if st.Account != nil { // a link from the account page (account_link.go)
		return b.accountLinkFinish(ctx, st.Account, connectorID, binding, bs.Active, meta, func() (providers.Identity, error) {
			res, err := sc.HandleACS(ctx, samlconn.ACSRequest{SAMLResponse: post.SAMLResponse, RelayState: post.RelayState,
				ExpectedRelayState: post.RelayState, RequestIDs: []string{st.AuthnRequestID}})
			return res.Identity, err
		})
	}
	req, client, perr := b.requestPage(ctx, st.RequestID, binding)
	if perr != nil {
		b.auditSAMLFailure(ctx, connectorID, "", "saml "+perr.Title, meta)
		return Result{Page: perr}
	}
	if !connectorAllowed(client, req, connectorID) {
		return pageErr(400, "Not available", "This sign-in method is not available for this application.", fmt.Errorf("connector %q not allowed", connectorID))
	}
	res, err := sc.HandleACS(ctx, samlconn.ACSRequest{SAMLResponse: post.SAMLResponse, RelayState: post.RelayState,
		ExpectedRelayState: post.RelayState, RequestIDs: []string{st.AuthnRequestID}})
	if err != nil {
		return b.upstreamFailed(ctx, req, client, up, err, meta)
	}
	ident := res.Identity
	if !slices.Contains(ident.AMR, AMRFederated) {
		ident.AMR = append([]string{AMRFederated}, ident.AMR...)
	}
	return b.upstreamSignedIn(ctx, req, client, bs, up, ident, meta, linkModeFor(req))
}

// samlIdPInitiated handles an unsolicited response. The connector refuses
// it unless allowIdPInitiated; when allowed, the user is signed in (an
// SSO session) for the connector's defaultClient only, and the browser is
// sent to that client's site (the origin of its first redirect URI),
// whose own login then completes from the session without a prompt: an
// authorization code is only ever issued to a request the client made.
func (b *Broker) samlIdPInitiated(ctx context.Context, up Upstream, sc samlconn.Capability, post samlPost, bs BrowserSessions, meta RequestMeta) Result {
	clientID := sc.DefaultClient()
	var client storage.Client
	if clientID != "" {
		c, err := b.store.GetClient(ctx, clientID)
		if err != nil || c.Disabled || len(c.RedirectURIs) == 0 ||
			(len(c.AllowedConnectors) > 0 && !slices.Contains(c.AllowedConnectors, sc.ID())) {
			b.auditSAMLFailure(ctx, sc.ID(), clientID, "saml default client unusable", meta)
			return pageErr(400, "Not available", "Sign-in started at the identity provider is not available for its application.",
				fmt.Errorf("IdP-initiated login: default client %q unusable (%v)", clientID, err))
		}
		client = c
	}
	req := &AuthRequest{ClientID: client.ID}
	res, err := sc.HandleACS(ctx, samlconn.ACSRequest{SAMLResponse: post.SAMLResponse, RelayState: post.RelayState})
	if err != nil {
		return b.upstreamFailed(ctx, req, client, up, err, meta)
	}
	if clientID == "" || !res.IdPInitiated {
		// The connector accepts an unsolicited response only when it
		// names a default client; kept so that a change fails closed.
		return pageErr(400, "Sign-in failed", "Unsolicited SAML response.", errors.New("unsolicited response accepted without a default client"))
	}
	home, err := url.Parse(client.RedirectURIs[0])
	if err != nil || home.Host == "" {
		return pageErr(400, "Not available", "Sign-in started at the identity provider is not available for its application.",
			fmt.Errorf("default client %q: redirect URI unusable", clientID))
	}
	ident := res.Identity
	if !slices.Contains(ident.AMR, AMRFederated) {
		ident.AMR = append([]string{AMRFederated}, ident.AMR...)
	}
	user, candidates, perr := b.linkIdentity(ctx, up, ident, client, meta, linkFirstLogin)
	if perr != nil {
		return Result{Page: perr}
	}
	if len(candidates) > 0 {
		// Linking to an existing account needs a proof sign-in, which
		// needs the application's own request: there is none here.
		b.auditSAMLFailure(ctx, sc.ID(), client.ID, "saml idp-initiated login needs a link proof", meta)
		return pageErr(409, "Sign in through the application first",
			"An account with this email already exists. Start the sign-in from the application once to link it to this identity provider.",
			errors.New("IdP-initiated login: identity not linked and its email matches existing accounts"))
	}
	cookies, sess, err := b.signIn(ctx, req, bs, user.ID, sc.ID(), ident.AMR, meta)
	if err != nil {
		return pageErr(500, "Server error", "Something went wrong on our side. Please try again.", err)
	}
	b.audit(ctx, storage.Event{Type: "user.login.succeeded", Actor: "user:" + user.ID, UserID: user.ID,
		ClientID: client.ID, ConnectorID: sc.ID(), IP: meta.IP, UserAgent: meta.UserAgent, RequestID: meta.RequestID,
		Data: map[string]any{"sid": sess.SID, "amr": ident.AMR, "idp_initiated": true}})
	if data, err := json.Marshal(fedSession{ConnectorID: sc.ID(), Subject: ident.Subject}); err == nil {
		if err := b.eph.Put(ctx, fedSessionKey(sess.SID), data, b.refresh.absolute); err != nil {
			b.log.WarnContext(ctx, "record the federated session", slog.Any("error", err))
		}
	}
	return Result{Redirect: &Redirect{URI: home.Scheme + "://" + home.Host + "/"}, Cookies: cookies}
}

// samlSingleLogout prepares single logout at the IdP for a session that
// signed in through a saml connector whose IdP offers it, once the
// session has ended here: it returns the URL to send the browser to
// instead of next (SAMLLogoutStart), which the SLO endpoint continues to
// when the IdP answers. "" means there is nothing to do.
func (b *Broker) samlSingleLogout(ctx context.Context, sid, connectorID, next, clientName string) string {
	_, sc, ok := b.samlConnector(connectorID)
	if !ok || b.fed.Store == nil {
		return ""
	}
	raw, err := b.eph.Get(ctx, fedSessionKey(sid))
	if err != nil {
		return ""
	}
	var fs fedSession
	if err := json.Unmarshal(raw, &fs); err != nil || fs.ConnectorID != connectorID {
		return ""
	}
	ident, err := b.fed.Store.GetIdentity(ctx, connectorID, fs.Subject)
	if err != nil {
		b.log.WarnContext(ctx, "SAML single logout: load identity", slog.String("connector_id", connectorID), slog.Any("error", err))
		return ""
	}
	relay, err := b.randomToken(32)
	if err != nil {
		return ""
	}
	lo, err := sc.LogoutRequest(ctx, providers.Identity{Subject: fs.Subject, ConnectorData: ident.ConnectorData}, relay)
	if err != nil {
		b.log.WarnContext(ctx, "SAML single logout: build LogoutRequest", slog.String("connector_id", connectorID), slog.Any("error", err))
		return ""
	}
	if lo.Empty() {
		return "" // the IdP offers none, or the login left no NameID
	}
	data, err := json.Marshal(samlLogout{ConnectorID: connectorID, RequestID: lo.RequestID, Next: next, ClientName: clientName,
		RedirectURL: lo.RedirectURL, PostURL: lo.PostURL, PostFields: lo.PostFields})
	if err == nil {
		err = b.eph.Put(ctx, samlLogoutKey(relay), data, b.reqTTL)
	}
	if err != nil {
		b.log.WarnContext(ctx, "SAML single logout: store", slog.Any("error", err))
		return ""
	}
	// A GET on our own origin starts it (SAMLLogoutStart), so that the
	// signed-out page's script and a plain redirect both can go there,
	// whatever the binding.
	return b.issuer + PathSAMLPrefix + url.PathEscape(connectorID) + "/slo?" + url.Values{"start": {relay}}.Encode()
}

// SAMLLogoutStart serves GET /saml/{connector}/slo?start=RELAY: it sends
// the browser to the IdP's single logout with the LogoutRequest that
// samlSingleLogout prepared (a redirect, or an auto-submitting form for
// the HTTP-POST binding).
func (b *Broker) SAMLLogoutStart(ctx context.Context, connectorID, relay string) (*Redirect, *PageError) {
	if _, _, ok := b.samlConnector(connectorID); !ok {
		return nil, samlUnknown
	}
	expired := &PageError{Status: 400, Title: "Sign-out not possible", Message: "The sign-out has expired or was already completed. You are signed out here."}
	if relay == "" || len(relay) > 80 {
		return nil, expired
	}
	raw, err := b.eph.Get(ctx, samlLogoutKey(relay))
	if errors.Is(err, storage.ErrNotFound) {
		return nil, expired
	}
	if err != nil {
		return nil, &PageError{Status: 500, Title: "Server error", Message: "Something went wrong on our side. Please try again.", Err: err}
	}
	var lo samlLogout
	if err := json.Unmarshal(raw, &lo); err != nil || lo.ConnectorID != connectorID {
		return nil, expired
	}
	if lo.RedirectURL != "" {
		return &Redirect{URI: lo.RedirectURL}, nil
	}
	return &Redirect{URI: lo.PostURL, Mode: oauth2.ResponseModeFormPost, Params: lo.PostFields}, nil
}

// SAMLLogoutResponse handles the IdP's answer at /saml/{connector}/slo
// (HTTP-Redirect query or HTTP-POST form, read from r): it finds the
// logout by its RelayState (single use), lets the connector check the
// LogoutResponse, and continues where the logout was going. The session
// here ended before the browser went to the IdP, so a refused answer
// only says that the IdP did not confirm. A LogoutRequest from the IdP
// (IdP-initiated single logout) is not supported.
func (b *Broker) SAMLLogoutResponse(ctx context.Context, connectorID string, r *http.Request, relay string) LogoutResult {
	up, sc, ok := b.samlConnector(connectorID)
	if !ok {
		return LogoutResult{Page: samlUnknown}
	}
	if relay == "" || len(relay) > 80 {
		return logoutPage(400, "This address only accepts the identity provider's answer to a sign-out started here.", errors.New("SLO without our RelayState"))
	}
	raw, err := b.eph.Take(ctx, samlLogoutKey(relay))
	if errors.Is(err, storage.ErrNotFound) {
		return logoutPage(400, "The sign-out has expired or was already completed.", errors.New("unknown SAML logout"))
	}
	if err != nil {
		return LogoutResult{Page: &PageError{Status: 500, Title: "Server error", Message: "Something went wrong on our side. Please try again.", Err: err}}
	}
	var lo samlLogout
	if err := json.Unmarshal(raw, &lo); err != nil || lo.ConnectorID != connectorID {
		return logoutPage(400, "The identity provider's answer arrived at the wrong address.", fmt.Errorf("SAML logout of %q at %q (%v)", lo.ConnectorID, connectorID, err))
	}
	if err := sc.HandleLogoutResponse(ctx, r, []string{lo.RequestID}); err != nil {
		b.log.WarnContext(ctx, "SAML single logout refused", slog.String("connector_id", connectorID), slog.Any("error", err))
		return logoutPage(400, "You are signed out here, but "+up.Connector.Name()+" did not confirm the sign-out there. Close the browser to be sure.", err)
	}
	return LogoutResult{Done: &SignedOut{Redirect: lo.Next, ClientName: lo.ClientName}}
}
