package oauth2

// Token endpoint values (RFC 6749 §4.1.3, §5.1, §6).
const (
	GrantTypeAuthorizationCode = "authorization_code"
	GrantTypeRefreshToken      = "refresh_token"

	TokenTypeBearer = "Bearer"
)

// TokenResponse is the successful token endpoint body (RFC 6749 §5.1,
// OpenID Connect Core 1.0 §3.1.3.3). Scope is set when the granted scope
// differs from the requested one, or always, at the caller's choice.
type TokenResponse struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int64  `json:"expires_in,omitempty"`
	RefreshToken string `json:"refresh_token,omitempty"`
	IDToken      string `json:"id_token,omitempty"`
	Scope        string `json:"scope,omitempty"`
}
