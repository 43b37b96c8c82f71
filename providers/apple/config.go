package apple

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/latchkeyid/latchkey/providers"
	"github.com/latchkeyid/latchkey/providers/mapping"
	"github.com/latchkeyid/latchkey/providers/upstream"
)

// Apple's fixed values.
const (
	// Issuer is the iss of Apple's ID tokens and the aud of the client
	// secret, wherever Apple's endpoints are reached.
	Issuer = "https://appleid.apple.com"
	// DefaultBaseURL is where the endpoints live: /auth/authorize,
	// /auth/token, /auth/keys.
	DefaultBaseURL = "https://appleid.apple.com"
	// DefaultClientSecretTTL is the client secret's lifetime when the
	// config sets none.
	DefaultClientSecretTTL = time.Hour
	// MaxClientSecretTTL is the longest lifetime Apple accepts (15777000
	// seconds, about 6 months).
	MaxClientSecretTTL = 15777000 * time.Second
	// MinClientSecretTTL keeps renewals sane.
	MinClientSecretTTL = 5 * time.Minute
)

var defaultScopes = []string{"name", "email"}

// DefaultScopes returns the scopes asked for when the config sets none.
func DefaultScopes() []string { return slices.Clone(defaultScopes) }

// Config is the `config` object of an apple connector. Keys are
// camelCase.
type Config struct {
	// ClientID is the Services ID (e.g. com.example.signin), the client
	// id of the web flow.
	ClientID string `json:"clientID"`
	// TeamID is the Apple Developer team id (10 characters), the client
	// secret's iss.
	TeamID string `json:"teamID"`
	// KeyID is the id of the Sign in with Apple key (10 characters), the
	// client secret's kid.
	KeyID string `json:"keyID"`
	// PrivateKey is that key: the .p8 file's PKCS#8 PEM ("-----BEGIN
	// PRIVATE KEY-----"), usually a file: reference. It signs the client
	// secret (ES256) and never leaves Latchkey.
	PrivateKey string `json:"privateKey"`
	// Scopes asked for: name and/or email (default both), or none.
	Scopes []string `json:"scopes"`
	// ClientSecretTTL is the client secret's lifetime, a Go duration
	// ("1h", "720h"); default 1h, at most MaxClientSecretTTL. A secret is
	// renewed when less than a quarter of its lifetime is left.
	ClientSecretTTL string `json:"clientSecretTTL"`
	// BaseURL is where Apple's endpoints are reached; change it only for
	// a proxy or a test fake. ID tokens must still come from Issuer.
	BaseURL string `json:"baseURL"`

	mapping.Config
}

// settings is the config made ready.
type settings struct {
	Config
	key *ecdsa.PrivateKey
	ttl time.Duration
}

func validAppleID(s string) bool {
	if len(s) != 10 {
		return false
	}
	for _, r := range s {
		if !(r >= '0' && r <= '9' || r >= 'A' && r <= 'Z') {
			return false
		}
	}
	return true
}

// ParsePrivateKey reads a .p8 key: PKCS#8 PEM holding a P-256 ECDSA key.
// Errors never quote the key.
func ParsePrivateKey(s string) (*ecdsa.PrivateKey, error) {
	block, rest := pem.Decode([]byte(strings.TrimSpace(s)))
	if block == nil {
		return nil, errors.New("must be a PEM private key (the .p8 file's content, e.g. file:/etc/latchkey/AuthKey_KEYID.p8)")
	}
	if len(strings.TrimSpace(string(rest))) > 0 {
		return nil, errors.New("must hold one PEM block")
	}
	if block.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("must be a PKCS#8 \"PRIVATE KEY\" PEM block (the .p8 file), not %q", upstream.Clip(block.Type, 40))
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, errors.New("is not a PKCS#8 private key")
	}
	ec, ok := k.(*ecdsa.PrivateKey)
	if !ok || ec.Curve != elliptic.P256() {
		return nil, errors.New("must be an ECDSA P-256 key (a Sign in with Apple key)")
	}
	return ec, nil
}

func checkRoot(s string) string {
	if msg := upstream.CheckURL(s); msg != "" {
		return msg
	}
	if u, _ := url.Parse(s); u.RawQuery != "" || u.ForceQuery {
		return "must not have a query"
	}
	return ""
}

// decodeConfig decodes and checks raw; it returns the settings with
// defaults applied, the compiled mapping and every problem.
func decodeConfig(raw json.RawMessage) (settings, *mapping.Mapper, []providers.FieldProblem) {
	var s settings
	probs := providers.DecodeConfig(raw, &s.Config)
	add := func(path, format string, args ...any) {
		probs = append(probs, providers.FieldProblem{Path: path, Message: fmt.Sprintf(format, args...)})
	}
	if strings.TrimSpace(s.ClientID) == "" {
		add("clientID", "required")
	}
	if s.TeamID == "" {
		add("teamID", "required")
	} else if !validAppleID(s.TeamID) {
		add("teamID", "must be the 10-character team id")
	}
	if s.KeyID == "" {
		add("keyID", "required")
	} else if !validAppleID(s.KeyID) {
		add("keyID", "must be the 10-character key id")
	}
	if s.PrivateKey == "" {
		add("privateKey", "required")
	} else if k, err := ParsePrivateKey(s.PrivateKey); err != nil {
		add("privateKey", "%s", err.Error())
	} else {
		s.key = k
	}
	if s.Scopes == nil {
		s.Scopes = DefaultScopes()
	}
	for i, sc := range s.Scopes {
		if sc != "name" && sc != "email" {
			add(fmt.Sprintf("scopes[%d]", i), "must be name or email")
		}
	}
	s.ttl = DefaultClientSecretTTL
	if s.ClientSecretTTL != "" {
		d, err := time.ParseDuration(s.ClientSecretTTL)
		switch {
		case err != nil:
			add("clientSecretTTL", "must be a duration such as 1h or 720h")
		case d < MinClientSecretTTL || d > MaxClientSecretTTL:
			add("clientSecretTTL", "must be between 5m and %s (Apple's limit, about 6 months)", MaxClientSecretTTL)
		default:
			s.ttl = d
		}
	}
	if s.BaseURL == "" {
		s.BaseURL = DefaultBaseURL
	} else if msg := checkRoot(s.BaseURL); msg != "" {
		add("baseURL", "%s", msg)
	}
	s.BaseURL = strings.TrimSuffix(s.BaseURL, "/")
	m, mprobs := mapping.Compile(s.Config.Config, mapping.Options{})
	probs = append(probs, mprobs...)
	return s, m, probs
}
