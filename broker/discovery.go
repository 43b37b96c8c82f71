package broker

import (
	"github.com/latchkeyid/latchkey/mfa"

	"encoding/json"
	"fmt"
	"net/url"
	"strings"
)

// Metadata is the provider metadata served at
// /.well-known/openid-configuration (OpenID Connect Discovery 1.0) and
// /.well-known/oauth-authorization-server (RFC 8414). Only what Latchkey
// implements is listed; empty fields are omitted.
type Metadata struct {
	Issuer                                             string   `json:"issuer"`
	AuthorizationEndpoint                              string   `json:"authorization_endpoint,omitempty"`
	TokenEndpoint                                      string   `json:"token_endpoint,omitempty"`
	UserinfoEndpoint                                   string   `json:"userinfo_endpoint,omitempty"`
	JWKSURI                                            string   `json:"jwks_uri"`
	ScopesSupported                                    []string `json:"scopes_supported,omitempty"`
	ResponseTypesSupported                             []string `json:"response_types_supported"`
	ResponseModesSupported                             []string `json:"response_modes_supported,omitempty"`
	GrantTypesSupported                                []string `json:"grant_types_supported,omitempty"`
	SubjectTypesSupported                              []string `json:"subject_types_supported"`
	IDTokenSigningAlgValuesSupported                   []string `json:"id_token_signing_alg_values_supported"`
	TokenEndpointAuthMethodsSupported                  []string `json:"token_endpoint_auth_methods_supported,omitempty"`
	TokenEndpointAuthSigningAlgValuesSupported         []string `json:"token_endpoint_auth_signing_alg_values_supported,omitempty"`
	IntrospectionEndpoint                              string   `json:"introspection_endpoint,omitempty"`
	IntrospectionEndpointAuthMethodsSupported          []string `json:"introspection_endpoint_auth_methods_supported,omitempty"`
	IntrospectionEndpointAuthSigningAlgValuesSupported []string `json:"introspection_endpoint_auth_signing_alg_values_supported,omitempty"`
	RevocationEndpoint                                 string   `json:"revocation_endpoint,omitempty"`
	RevocationEndpointAuthMethodsSupported             []string `json:"revocation_endpoint_auth_methods_supported,omitempty"`
	RevocationEndpointAuthSigningAlgValuesSupported    []string `json:"revocation_endpoint_auth_signing_alg_values_supported,omitempty"`
	CodeChallengeMethodsSupported                      []string `json:"code_challenge_methods_supported,omitempty"`
	ClaimsSupported                                    []string `json:"claims_supported,omitempty"`
	ACRValuesSupported                                 []string `json:"acr_values_supported,omitempty"`
	AuthorizationResponseIssParameterSupported         bool     `json:"authorization_response_iss_parameter_supported,omitempty"`
	ClaimsParameterSupported                           bool     `json:"claims_parameter_supported,omitempty"`
	EndSessionEndpoint                                 string   `json:"end_session_endpoint,omitempty"`
	BackchannelLogoutSupported                         bool     `json:"backchannel_logout_supported,omitempty"`
	BackchannelLogoutSessionSupported                  bool     `json:"backchannel_logout_session_supported,omitempty"`
	FrontchannelLogoutSupported                        bool     `json:"frontchannel_logout_supported,omitempty"`
	FrontchannelLogoutSessionSupported                 bool     `json:"frontchannel_logout_session_supported,omitempty"`
	RequestParameterSupported                          bool     `json:"request_parameter_supported"`
	RequestURIParameterSupported                       bool     `json:"request_uri_parameter_supported"`
}

// Paths of the endpoints, relative to the issuer.
const (
	PathJWKS          = "/keys"
	PathAuthorize     = "/authorize"
	PathToken         = "/token"
	PathUserinfo      = "/userinfo"
	PathIntrospect    = "/introspect"
	PathRevoke        = "/revoke"
	PathEndSession    = "/logout"
	PathDiscoveryOIDC = "/.well-known/openid-configuration"
	PathDiscoveryAS   = "/.well-known/oauth-authorization-server"
)

// NewMetadata returns the metadata for issuer. idTokenAlgs are the
// algorithms the key manager can sign ID tokens with.
func NewMetadata(issuer string, idTokenAlgs []string) (Metadata, error) {
	u, err := url.Parse(issuer)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return Metadata{}, fmt.Errorf("issuer %q is not an absolute URL", issuer)
	}
	base := strings.TrimSuffix(issuer, "/")
	return Metadata{
		Issuer:                           issuer,
		JWKSURI:                          base + PathJWKS,
		ResponseTypesSupported:           []string{"code"},
		SubjectTypesSupported:            []string{"public"},
		IDTokenSigningAlgValuesSupported: idTokenAlgs,
	}, nil
}

// JSON returns the metadata document.
func (m Metadata) JSON() ([]byte, error) {
	b, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encode provider metadata: %w", err)
	}
	return b, nil
}

// WithCodeFlow adds what the token service implements: the
// authorization code flow (endpoints, scopes, response modes, PKCE,
// claims), the refresh_token and client_credentials grants, client
// authentication (secrets, private_key_jwt, none for public clients), and
// the introspection (RFC 7662) and revocation (RFC 7009) endpoints.
func (m Metadata) WithCodeFlow() Metadata {
	base := strings.TrimSuffix(m.Issuer, "/")
	m.AuthorizationEndpoint = base + PathAuthorize
	m.TokenEndpoint = base + PathToken
	m.UserinfoEndpoint = base + PathUserinfo
	m.ScopesSupported = SupportedScopes
	m.ResponseModesSupported = []string{"query", "form_post"}
	m.GrantTypesSupported = []string{"authorization_code", "refresh_token", GrantTypeClientCredentials}
	m.TokenEndpointAuthMethodsSupported = []string{AuthMethodBasic, AuthMethodPost, AuthMethodPrivateKeyJWT, AuthMethodNone}
	m.TokenEndpointAuthSigningAlgValuesSupported = AssertionAlgs
	// Introspection needs a confidential client; revocation also takes a
	// public client's client_id (RFC 7009 §5).
	m.IntrospectionEndpoint = base + PathIntrospect
	m.IntrospectionEndpointAuthMethodsSupported = []string{AuthMethodBasic, AuthMethodPost, AuthMethodPrivateKeyJWT}
	m.IntrospectionEndpointAuthSigningAlgValuesSupported = AssertionAlgs
	m.RevocationEndpoint = base + PathRevoke
	m.RevocationEndpointAuthMethodsSupported = []string{AuthMethodBasic, AuthMethodPost, AuthMethodPrivateKeyJWT, AuthMethodNone}
	m.RevocationEndpointAuthSigningAlgValuesSupported = AssertionAlgs
	m.CodeChallengeMethodsSupported = []string{"S256"}
	m.ClaimsSupported = []string{"iss", "sub", "aud", "azp", "exp", "iat", "auth_time", "nonce", "acr", "amr", "sid", "at_hash",
		"name", "preferred_username", "email", "email_verified", "groups"}
	m.AuthorizationResponseIssParameterSupported = true
	m.ClaimsParameterSupported = true
	m.ACRValuesSupported = mfa.ACRValuesSupported()
	return m
}

// WithLogout adds the three kinds of logout the broker performs:
// RP-Initiated Logout 1.0 (end_session_endpoint), Back-Channel Logout 1.0
// and Front-Channel Logout 1.0, both with the session id (logout tokens
// carry sid and sub; front-channel URLs get iss and sid).
func (m Metadata) WithLogout() Metadata {
	m.EndSessionEndpoint = strings.TrimSuffix(m.Issuer, "/") + PathEndSession
	m.BackchannelLogoutSupported = true
	m.BackchannelLogoutSessionSupported = true
	m.FrontchannelLogoutSupported = true
	m.FrontchannelLogoutSessionSupported = true
	return m
}
