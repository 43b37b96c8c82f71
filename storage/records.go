package storage

import (
	"encoding/json"
	"time"
)

// Client is an OAuth 2.0 / OpenID Connect client (relying party). Field
// names follow RFC 7591 and OpenID Connect Dynamic Client Registration;
// Latchkey's extensions use the same snake_case (CONTRACTS.md).
type Client struct {
	ID   string `json:"client_id"`
	Name string `json:"client_name,omitempty"`
	// SecretHash is the hex SHA-256 of the client secret; empty for public
	// clients and clients that authenticate with private_key_jwt.
	SecretHash              string          `json:"secret_hash,omitempty"`
	Public                  bool            `json:"public,omitempty"`
	RedirectURIs            []string        `json:"redirect_uris"`
	PostLogoutRedirectURIs  []string        `json:"post_logout_redirect_uris,omitempty"`
	GrantTypes              []string        `json:"grant_types,omitempty"`
	ResponseTypes           []string        `json:"response_types,omitempty"`
	TokenEndpointAuthMethod string          `json:"token_endpoint_auth_method,omitempty"`
	ApplicationType         string          `json:"application_type,omitempty"`
	IDTokenSignedAlg        string          `json:"id_token_signed_response_alg,omitempty"`
	RequirePKCE             *bool           `json:"require_pkce,omitempty"`
	FirstParty              *bool           `json:"first_party,omitempty"`
	Audience                []string        `json:"audience,omitempty"`
	AllowedConnectors       []string        `json:"allowed_connectors,omitempty"`
	Scope                   string          `json:"scope,omitempty"`
	SessionBoundRefresh     bool            `json:"session_bound_refresh_tokens,omitempty"`
	BackchannelLogoutURI    string          `json:"backchannel_logout_uri,omitempty"`
	FrontchannelLogoutURI   string          `json:"frontchannel_logout_uri,omitempty"`
	JWKS                    json.RawMessage `json:"jwks,omitempty"`
	JWKSURI                 string          `json:"jwks_uri,omitempty"`
	// Extra keeps any other RFC 7591 metadata the client was registered with.
	Extra         map[string]any `json:"extra,omitempty"`
	Disabled      bool           `json:"disabled,omitempty"`
	ConfigManaged bool           `json:"config_managed,omitempty"`
	CreatedAt     time.Time      `json:"created_at"`
	UpdatedAt     time.Time      `json:"updated_at"`
}

// Connector is an upstream identity connector's stored configuration. Config
// is the type-specific document; the providers package for Type decodes it.
// Secrets inside Config are encrypted by whoever writes it.
type Connector struct {
	ID     string          `json:"id"`
	Type   string          `json:"type"`
	Name   string          `json:"name"`
	Config json.RawMessage `json:"config,omitempty"`
	// Disabled keeps the connector stored but out of the login.
	Disabled      bool      `json:"disabled,omitempty"`
	ConfigManaged bool      `json:"config_managed,omitempty"`
	CreatedAt     time.Time `json:"created_at"`
	UpdatedAt     time.Time `json:"updated_at"`
}

// User is a Latchkey user. ID is the stable, opaque subject (`sub`); it never
// reveals an upstream id. Username is unique (case-sensitive as stored; the
// caller normalises). PasswordHash is a PHC-format argon2id string, empty for
// users without a local password.
type User struct {
	ID            string    `json:"id"`
	Username      string    `json:"username"`
	Email         string    `json:"email,omitempty"`
	EmailVerified bool      `json:"email_verified,omitempty"`
	Name          string    `json:"name,omitempty"`
	Groups        []string  `json:"groups,omitempty"`
	PasswordHash  string    `json:"password_hash,omitempty"`
	Disabled      bool      `json:"disabled,omitempty"`
	CreatedAt     time.Time `json:"created_at"`
	UpdatedAt     time.Time `json:"updated_at"`
}

// Keys is the one signing-keys record. Data is a document owned by
// broker/keys (private keys inside it are encrypted). Version increases by
// one on every successful update; UpdateKeys is a compare-and-swap on it.
type Keys struct {
	Version   int64           `json:"version"`
	Data      json.RawMessage `json:"data"`
	UpdatedAt time.Time       `json:"updated_at"`
}

// Event is an audit record. Type is a dotted name such as
// "user.login.succeeded" or "keys.rotated". Actor says who caused it
// ("user:<id>", "admin:<api key prefix>", "cli", "system").
type Event struct {
	ID          string         `json:"id"`
	Type        string         `json:"type"`
	Time        time.Time      `json:"time"`
	Actor       string         `json:"actor,omitempty"`
	UserID      string         `json:"user_id,omitempty"`
	ClientID    string         `json:"client_id,omitempty"`
	ConnectorID string         `json:"connector_id,omitempty"`
	IP          string         `json:"ip,omitempty"`
	UserAgent   string         `json:"user_agent,omitempty"`
	RequestID   string         `json:"request_id,omitempty"`
	Data        map[string]any `json:"data,omitempty"`
}

// EventFilter selects audit events. Zero fields do not filter. Results are
// ordered oldest first; Limit 0 means no limit.
type EventFilter struct {
	Since  time.Time
	Type   string
	UserID string
	Limit  int
	// After, an event id, keeps only the events listed after that one
	// (a cursor); an unknown id selects nothing.
	After string
}

// Consent records the scopes a user granted a (third-party) client.
type Consent struct {
	UserID    string    `json:"user_id"`
	ClientID  string    `json:"client_id"`
	Scopes    []string  `json:"scopes"`
	GrantedAt time.Time `json:"granted_at"`
}

// RefreshToken is one refresh token of a rotation family (DESIGN-NOTES.md
// "Refresh rotation with a grace window"). The token itself is never
// stored: Hash is the hex SHA-256 of it. Every use rotates the token: the
// store marks it rotated (RotatedAt, SuccessorHash) and inserts the
// successor, whose ParentHash is this Hash and whose FamilyID and
// FamilyCreatedAt are inherited. Revoking a family sets RevokedAt on every
// token of it.
type RefreshToken struct {
	Hash       string `json:"hash"`
	FamilyID   string `json:"family_id"`
	ParentHash string `json:"parent_hash,omitempty"` // empty for the first of a family
	ClientID   string `json:"client_id"`
	UserID     string `json:"user_id"`
	// What the user granted and how they authenticated, carried into every
	// token the family issues.
	Scopes   []string        `json:"scopes"`
	SID      string          `json:"sid,omitempty"`
	AuthTime time.Time       `json:"auth_time"`
	AMR      []string        `json:"amr,omitempty"`
	Claims   json.RawMessage `json:"claims,omitempty"` // the OIDC claims request parameter
	// IssuedAt starts the idle lifetime; FamilyCreatedAt the absolute one.
	IssuedAt        time.Time `json:"issued_at"`
	FamilyCreatedAt time.Time `json:"family_created_at"`
	// RotatedAt and SuccessorHash are set together by the rotation; zero
	// and empty until then.
	RotatedAt     time.Time `json:"rotated_at,omitzero"`
	SuccessorHash string    `json:"successor_hash,omitempty"`
	// RevokedAt is set when the family is revoked; zero until then.
	RevokedAt time.Time `json:"revoked_at,omitzero"`
}
