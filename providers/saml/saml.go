package saml

import (
	"context"
	"crypto/ecdsa"
	"encoding/base64"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/beevik/etree"
	crewjam "github.com/crewjam/saml"
	dsig "github.com/russellhaering/goxmldsig"

	"github.com/latchkeyid/latchkey/internal/clock"
	"github.com/latchkeyid/latchkey/providers"
	"github.com/latchkeyid/latchkey/providers/upstream"
)

// TypeName is the connector type's name in the registry.
const TypeName = "saml"

// ReplayCache remembers assertion IDs until they expire. The broker backs
// it with the ephemeral store's Create (an insert that fails when the key
// exists), so every replica shares it.
type ReplayCache interface {
	// Seen records key until `until` and reports whether it was already
	// recorded. key is "<connector id>:<assertion ID>", so IdPs cannot
	// collide. An error refuses the response (fail closed).
	Seen(ctx context.Context, key string, until time.Time) (alreadySeen bool, err error)
}

// Type is the saml connector type. cmd builds it with the public base URL
// and the replay cache and registers it under TypeName.
type Type struct {
	// BaseURL is Latchkey's public base URL (the issuer): the SP's
	// endpoints are {BaseURL}/saml/{connector}/metadata|acs|slo.
	BaseURL string
	// Replay remembers accepted assertion IDs. Open refuses to open a
	// connector without one.
	Replay ReplayCache
}

var _ providers.Type = Type{}

// Validate checks a saml connector's config; see Config.
func (Type) Validate(raw json.RawMessage) []providers.FieldProblem {
	_, probs := decodeConfig(raw)
	return probs
}

// Open returns a *Connector. It does no network I/O: metadata from
// idpMetadataURL is fetched on first use.
func (t Type) Open(ctx context.Context, info providers.Info, raw json.RawMessage, deps providers.Deps) (providers.Connector, error) {
	s, probs := decodeConfig(raw)
	if len(probs) > 0 {
		return nil, &providers.ConfigError{Problems: probs}
	}
	return newConnector(t, info, s, deps)
}

// New opens a connector from a typed Config (for tests and callers that
// build configs in Go).
func New(ctx context.Context, t Type, info providers.Info, cfg Config, deps providers.Deps) (*Connector, error) {
	return providers.OpenTyped[*Connector](ctx, t, info, cfg, deps)
}

// Connector is a SAML 2.0 service provider for one IdP.
type Connector struct {
	info   providers.Info
	set    *settings
	replay ReplayCache
	client *upstream.Client
	clock  clock.Clock
	log    *slog.Logger
	urls   URLs
	// base is the service provider without IdP metadata; every operation
	// works on a copy (ServiceProvider has no locks, and per-call fields
	// differ).
	base crewjam.ServiceProvider

	fetchSem chan struct{}
	mu       sync.Mutex
	md       *idpMetadata
}

// Capability is what the broker needs from a SAML connector, found by
// type assertion on an open providers.Connector. (It lives here rather
// than in package providers because its request and result types do.)
type Capability interface {
	providers.Connector
	URLs() URLs
	SPMetadata() ([]byte, error)
	StartLogin(ctx context.Context, req LoginRequest) (Login, error)
	HandleACS(ctx context.Context, req ACSRequest) (ACSResult, error)
	LogoutRequest(ctx context.Context, id providers.Identity, relayState string) (Logout, error)
	LogoutRequestWithNonce(ctx context.Context, id providers.Identity, relayState, cspNonce string) (Logout, error)
	HandleLogoutResponse(ctx context.Context, r *http.Request, requestIDs []string) error
	DefaultClient() string
}

var (
	_ providers.Connector = (*Connector)(nil)
	_ Capability          = (*Connector)(nil)
)

// URLs are the SP's own endpoints.
type URLs struct {
	// EntityID is the SP entity ID: the configured entityID, else Metadata.
	EntityID string
	Metadata string
	ACS      string
	SLO      string
}

// Paths returns the SP endpoints of connector id under baseURL:
// {base}/saml/{id}/metadata, /acs and /slo.
func Paths(baseURL, id string) URLs {
	base := strings.TrimSuffix(baseURL, "/") + "/saml/" + url.PathEscape(id)
	return URLs{EntityID: base + "/metadata", Metadata: base + "/metadata", ACS: base + "/acs", SLO: base + "/slo"}
}

func newConnector(t Type, info providers.Info, s *settings, deps providers.Deps) (*Connector, error) {
	if info.ID == "" {
		return nil, errors.New("saml: connector id is empty")
	}
	if t.Replay == nil {
		return nil, errors.New("saml: Type.Replay is nil (the replay cache is required)")
	}
	if deps.HTTPClient == nil {
		return nil, errors.New("saml: Deps.HTTPClient is nil (the hardened client is required)")
	}
	if u, err := url.Parse(t.BaseURL); err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") ||
		u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("saml: Type.BaseURL %q is not an absolute http(s) URL", t.BaseURL)
	}
	if info.Name == "" {
		info.Name = info.ID
	}
	clk := deps.Clock
	if clk == nil {
		clk = clock.Real{}
	}
	log := deps.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	urls := Paths(t.BaseURL, info.ID)
	if s.cfg.EntityID != "" {
		urls.EntityID = s.cfg.EntityID
	}
	c := &Connector{
		info:     info,
		set:      s,
		replay:   t.Replay,
		client:   upstream.New(deps.HTTPClient, upstream.Settings{Info: info, Logger: log}),
		clock:    clk,
		log:      log,
		urls:     urls,
		fetchSem: make(chan struct{}, 1),
	}
	mustURL := func(s string) url.URL {
		u, _ := url.Parse(s)
		return *u
	}
	c.base = crewjam.ServiceProvider{
		EntityID:                         urls.EntityID,
		MetadataURL:                      mustURL(urls.Metadata),
		AcsURL:                           mustURL(urls.ACS),
		SloURL:                           mustURL(urls.SLO),
		AuthnNameIDFormat:                s.nameIDFormat,
		AssertionConsumerServiceBindings: []string{crewjam.HTTPPostBinding},
		LogoutBindings:                   []string{crewjam.HTTPRedirectBinding, crewjam.HTTPPostBinding},
		MetadataOmitValidUntil:           true,
		LimitRelayStateLength:            true,
		RejectSHA1Signatures:             true,
		RejectUnknownConditions:          false,
		Clock:                            dsig.NewFakeClock(newClockAdapter(clk)),
	}
	if s.spKey != nil {
		c.base.Key = s.spKey
		c.base.Certificate = s.spCert
		method := dsig.RSASHA256SignatureMethod
		if _, ok := s.spKey.(*ecdsa.PrivateKey); ok {
			method = dsig.ECDSASHA256SignatureMethod
		}
		// LogoutRequests must be signed (saml-profiles §4.4.3.1) whenever
		// we can; AuthnRequests only when asked to.
		c.base.LogoutSignatureMethod = method
		if s.cfg.SignAuthnRequests {
			c.base.SignatureMethod = method
		}
	}
	if s.encKey != nil {
		c.base.EncryptionKey = s.encKey
		c.base.EncryptionCertificate = s.encCert
	}
	return c, nil
}

// ID returns the connector's id.
func (c *Connector) ID() string { return c.info.ID }

// Name returns the connector's display name.
func (c *Connector) Name() string { return c.info.Name }

// URLs returns the SP's endpoints and entity ID.
func (c *Connector) URLs() URLs { return c.urls }

// DefaultClient is the client an IdP-initiated login signs in to ("" when
// IdP-initiated login is off).
func (c *Connector) DefaultClient() string {
	if !c.set.cfg.AllowIdPInitiated {
		return ""
	}
	return c.set.cfg.DefaultClient
}

// BreakerState reports the metadata fetcher's circuit breaker state.
func (c *Connector) BreakerState() string { return c.client.BreakerState() }

// SPMetadata returns the SP metadata XML to give the IdP: entity ID, the
// ACS (HTTP-POST), the SLO endpoint (HTTP-Redirect and HTTP-POST), the
// requested NameID format, the signing certificate (when spKey is set) and
// the encryption certificate (spEncryptionCertificate, or an RSA
// spCertificate). It needs no IdP metadata, so it works offline (`latchkey
// saml sp-metadata`).
func (c *Connector) SPMetadata() ([]byte, error) {
	sp := c.base
	ed := sp.Metadata()
	out, err := xml.MarshalIndent(ed, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("saml: encode SP metadata: %w", err)
	}
	return append([]byte(xml.Header), append(out, '\n')...), nil
}

// LoginRequest is what the broker hands StartLogin.
type LoginRequest struct {
	// RelayState is the broker's opaque value that finds (and is bound
	// to) the stored auth request when the browser comes back; at most 80
	// bytes (saml-bindings §3.4.3). Required.
	RelayState string
	// ForceAuthn asks the IdP to authenticate the user again (the app's
	// prompt=login or max_age).
	ForceAuthn bool
	// CSPNonce, when set, is put on the auto-submit <script> of the
	// HTTP-POST binding's form, for a page served with a nonce CSP.
	CSPNonce string
}

// Login is how to send the browser to the IdP.
type Login struct {
	// RequestID is the AuthnRequest's ID: the broker stores it with the
	// auth request and passes it back in ACSRequest.RequestIDs, so the
	// response's InResponseTo is checked.
	RequestID string
	// RedirectURL (binding redirect): send the browser here with 303.
	RedirectURL string
	// PostForm (binding post): an HTML fragment (a form and its
	// auto-submit script) to serve as the page body.
	PostForm []byte
	// PostURL and PostFields (binding post) are the same form as data
	// (SAMLRequest and RelayState), for a caller that renders its own
	// auto-submitting form.
	PostURL    string
	PostFields url.Values
}

// postFields are the HTTP-POST binding's form fields for a protocol
// message element: SAMLRequest (base64 of the XML) and RelayState.
func postFields(el *etree.Element, relayState string) (url.Values, error) {
	doc := etree.NewDocument()
	doc.SetRoot(el)
	buf, err := doc.WriteToBytes()
	if err != nil {
		return nil, fmt.Errorf("saml: encode request: %w", err)
	}
	return url.Values{"SAMLRequest": {base64.StdEncoding.EncodeToString(buf)}, "RelayState": {relayState}}, nil
}

// StartLogin builds an AuthnRequest for the IdP's SingleSignOnService of
// the configured binding (signed when signAuthnRequests), asking for the
// response at our ACS with HTTP-POST. An IdP whose metadata cannot be
// fetched yields an error matching providers.ErrUpstreamUnavailable.
func (c *Connector) StartLogin(ctx context.Context, req LoginRequest) (Login, error) {
	if req.RelayState == "" {
		return Login{}, errors.New("saml: StartLogin needs a RelayState")
	}
	if len(req.RelayState) > crewjam.MaxRelayStateLength {
		return Login{}, fmt.Errorf("saml: RelayState is %d bytes, at most %d are allowed", len(req.RelayState), crewjam.MaxRelayStateLength)
	}
	md, err := c.metadata(ctx)
	if err != nil {
		return Login{}, err
	}
	sp := c.sp(md)
	if req.ForceAuthn {
		t := true
		sp.ForceAuthn = &t
	}
	binding := crewjam.HTTPRedirectBinding
	if c.set.post {
		binding = crewjam.HTTPPostBinding
	}
	ar, err := sp.MakeAuthenticationRequest(sp.GetSSOBindingLocation(binding), binding, crewjam.HTTPPostBinding)
	if err != nil {
		return Login{}, fmt.Errorf("saml: make AuthnRequest: %w", err)
	}
	out := Login{RequestID: ar.ID}
	if c.set.post {
		out.PostForm = ar.PostWithNonce(req.RelayState, req.CSPNonce)
		out.PostURL = ar.Destination
		if out.PostFields, err = postFields(ar.Element(), req.RelayState); err != nil {
			return Login{}, err
		}
		return out, nil
	}
	u, err := ar.Redirect(req.RelayState, sp)
	if err != nil {
		return Login{}, fmt.Errorf("saml: encode AuthnRequest: %w", err)
	}
	out.RedirectURL = u.String()
	return out, nil
}

// sp returns a copy of the service provider using md.
func (c *Connector) sp(md *idpMetadata) *crewjam.ServiceProvider {
	sp := c.base
	sp.IDPMetadata = md.entity
	return &sp
}
