package saml

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	crewjam "github.com/crewjam/saml"

	"github.com/latchkeyid/latchkey/providers"
	"github.com/latchkeyid/latchkey/providers/mapping"
	"github.com/latchkeyid/latchkey/providers/upstream"
)

// Defaults and bounds of the config.
const (
	// DefaultClockSkew is how far the IdP's clock may be off ours when the
	// assertion's NotBefore / NotOnOrAfter are checked.
	DefaultClockSkew = 2 * time.Minute
	// MaxClockSkew is the largest clockSkew accepted: crewjam/saml checks
	// the same times with its own fixed allowance (saml.MaxClockSkew, 3m)
	// before we do, so a larger value could not widen anything.
	MaxClockSkew = 3 * time.Minute
	// DefaultMetadataRefresh is how long fetched IdP metadata is used
	// before it is fetched again (sooner when its validUntil passes).
	DefaultMetadataRefresh = 24 * time.Hour
	// MinMetadataRefresh bounds idpMetadataRefresh from below.
	MinMetadataRefresh = time.Minute
	// MaxMetadataBytes bounds IdP metadata (inline, file: or fetched).
	MaxMetadataBytes = 1 << 20
)

// Config is the `config` object of a saml connector. Keys are camelCase.
type Config struct {
	// IdPMetadataURL is where the IdP publishes its metadata; it is
	// fetched through the hardened client on first use and again every
	// IdPMetadataRefresh. Exactly one of IdPMetadataURL and IdPMetadata.
	IdPMetadataURL string `json:"idpMetadataURL"`
	// IdPMetadata is the IdP metadata XML itself. The config loader
	// replaces a `file:PATH` value by the file's content; a value that
	// still starts with file: (a connector record from the CLI or API) is
	// read by the connector.
	IdPMetadata string `json:"idpMetadata"`
	// IdPMetadataCertificates pins the metadata: when set, the metadata's
	// root element must carry an XML signature by one of these PEM
	// certificates, or it is refused.
	IdPMetadataCertificates []string `json:"idpMetadataCertificates"`
	// IdPMetadataRefresh is how often metadata from IdPMetadataURL is
	// fetched again (Go duration, default 24h, at least 1m).
	IdPMetadataRefresh string `json:"idpMetadataRefresh"`
	// IdPEntityID picks the IdP out of an aggregate (federation) metadata
	// document, and when set is required to match the metadata's entityID.
	IdPEntityID string `json:"idpEntityID"`

	// EntityID is the SP entity ID; default the SP metadata URL
	// {base}/saml/{connector}/metadata.
	EntityID string `json:"entityID"`
	// SPKey and SPCertificate (PEM, secrets from ${ENV} or file:) sign
	// AuthnRequests and LogoutRequests and, unless SPEncryptionKey is set
	// and when the key is RSA, decrypt encrypted assertions. Both or
	// neither.
	SPKey         string `json:"spKey"`
	SPCertificate string `json:"spCertificate"`
	// SPEncryptionKey and SPEncryptionCertificate (PEM, RSA) are a
	// separate key pair for encrypted assertions. Both or neither.
	SPEncryptionKey         string `json:"spEncryptionKey"`
	SPEncryptionCertificate string `json:"spEncryptionCertificate"`
	// SignAuthnRequests signs AuthnRequests with SPKey (needs SPKey).
	SignAuthnRequests bool `json:"signAuthnRequests"`
	// Binding sends the AuthnRequest with HTTP-Redirect ("redirect", the
	// default) or HTTP-POST ("post"). Responses always come back by
	// HTTP-POST to the ACS.
	Binding string `json:"binding"`
	// RequireSignedResponse and RequireSignedAssertion say which
	// signatures must be present (and valid: a signature that is present
	// is always checked). Defaults false and true; both false is refused.
	RequireSignedResponse  *bool `json:"requireSignedResponse"`
	RequireSignedAssertion *bool `json:"requireSignedAssertion"`
	// NameIDFormat is sent in the AuthnRequest's NameIDPolicy: persistent,
	// transient, emailAddress, unspecified or a full URN. Default
	// unspecified (the IdP chooses).
	NameIDFormat string `json:"nameIDFormat"`
	// AllowIdPInitiated accepts unsolicited responses (IdP-initiated
	// login); the broker then signs the user in to DefaultClient. Off by
	// default.
	AllowIdPInitiated bool   `json:"allowIdPInitiated"`
	DefaultClient     string `json:"defaultClient"`
	// ClockSkew is the allowance for the IdP's clock (Go duration,
	// default 2m, at most 3m).
	ClockSkew string `json:"clockSkew"`
	// Attributes names the attributes (by Name or FriendlyName) the
	// Identity's fields come from; each unset one has defaults
	// (DefaultAttributes).
	Attributes AttributeNames `json:"attributes"`
	// AllowedGroups, when set, refuses users who are in none of them
	// (after claimMapping.groups).
	AllowedGroups []string `json:"allowedGroups"`
	// EmailVerified is the Identity's EmailVerified for a non-empty email
	// (default true: the directory is the authority, CONTRACTS.md).
	EmailVerified *bool `json:"emailVerified"`

	mapping.Config
}

// AttributeNames names, for each Identity field, the SAML attribute it is
// read from (its Name or FriendlyName).
type AttributeNames struct {
	// Subject is the attribute holding the user's stable id; unset means
	// the assertion's NameID (which must then not be transient).
	Subject  string `json:"subject"`
	Email    string `json:"email"`
	Name     string `json:"name"`
	Username string `json:"username"`
	Groups   string `json:"groups"`
}

// DefaultAttributes returns the attribute names tried, in order, for a
// field whose AttributeNames entry is unset (keys email, name, givenName,
// surname, username, groups): the names Entra ID, ADFS, Okta and
// LDAP-based IdPs (Shibboleth, Keycloak) use.
func DefaultAttributes() map[string][]string {
	out := make(map[string][]string, len(defaultAttributes))
	for k, v := range defaultAttributes {
		out[k] = append([]string(nil), v...)
	}
	return out
}

var defaultAttributes = map[string][]string{
	"email": {
		"email", "mail", "emailAddress", "Email",
		"http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress",
		"urn:oid:0.9.2342.19200300.100.1.3",
	},
	"name": {
		"displayName", "name", "cn",
		"http://schemas.microsoft.com/identity/claims/displayname",
		"urn:oid:2.16.840.1.113730.3.1.241", "urn:oid:2.5.4.3",
	},
	"givenName": {
		"givenName", "firstName",
		"http://schemas.xmlsoap.org/ws/2005/05/identity/claims/givenname", "urn:oid:2.5.4.42",
	},
	"surname": {
		"sn", "surname", "lastName",
		"http://schemas.xmlsoap.org/ws/2005/05/identity/claims/surname", "urn:oid:2.5.4.4",
	},
	"username": {
		"uid", "username", "preferred_username",
		"urn:oid:0.9.2342.19200300.100.1.1",
	},
	"groups": {
		"groups", "memberOf", "Groups",
		"http://schemas.microsoft.com/ws/2008/06/identity/claims/groups",
	},
}

// nameIDFormats are the short names nameIDFormat accepts.
var nameIDFormats = map[string]crewjam.NameIDFormat{
	"persistent":   crewjam.PersistentNameIDFormat,
	"transient":    crewjam.TransientNameIDFormat,
	"emailAddress": crewjam.EmailAddressNameIDFormat,
	"unspecified":  crewjam.UnspecifiedNameIDFormat,
}

// settings is a decoded, checked config with its parsed values.
type settings struct {
	cfg             Config
	mapper          *mapping.Mapper
	metadataXML     []byte // inline metadata, nil for a URL
	metadataCerts   []*x509.Certificate
	metadataRefresh time.Duration
	spKey           crypto.Signer
	spCert          *x509.Certificate
	encKey          *rsa.PrivateKey
	encCert         *x509.Certificate
	nameIDFormat    crewjam.NameIDFormat
	post            bool
	signedResponse  bool
	signedAssertion bool
	clockSkew       time.Duration
	emailVerified   bool
	// entity is the parsed inline metadata (nil for a URL).
	entity *crewjam.EntityDescriptor
}

// decodeConfig decodes and checks raw and returns every problem at once.
func decodeConfig(raw json.RawMessage) (*settings, []providers.FieldProblem) {
	var cfg Config
	probs := providers.DecodeConfig(raw, &cfg)
	add := func(path, format string, args ...any) {
		probs = append(probs, providers.FieldProblem{Path: path, Message: fmt.Sprintf(format, args...)})
	}
	s := &settings{cfg: cfg}

	for i, p := range cfg.IdPMetadataCertificates {
		cert, err := parseCertificate(p)
		if err != nil {
			add(fmt.Sprintf("idpMetadataCertificates[%d]", i), "%v", err)
			continue
		}
		s.metadataCerts = append(s.metadataCerts, cert)
	}
	switch {
	case cfg.IdPMetadataURL != "" && cfg.IdPMetadata != "":
		add("idpMetadata", "set either idpMetadataURL or idpMetadata, not both")
	case cfg.IdPMetadataURL == "" && cfg.IdPMetadata == "":
		add("idpMetadataURL", "required (or idpMetadata)")
	case cfg.IdPMetadataURL != "":
		if msg := upstream.CheckURL(cfg.IdPMetadataURL); msg != "" {
			add("idpMetadataURL", "%s", msg)
		}
	}
	s.metadataRefresh = DefaultMetadataRefresh
	if cfg.IdPMetadataRefresh != "" {
		d, err := time.ParseDuration(cfg.IdPMetadataRefresh)
		switch {
		case err != nil:
			add("idpMetadataRefresh", "must be a duration such as 12h")
		case d < MinMetadataRefresh:
			add("idpMetadataRefresh", "must be at least %s", MinMetadataRefresh)
		default:
			s.metadataRefresh = d
		}
		if cfg.IdPMetadataURL == "" && cfg.IdPMetadata != "" {
			add("idpMetadataRefresh", "only applies to idpMetadataURL")
		}
	}

	if cfg.EntityID != "" {
		if strings.TrimSpace(cfg.EntityID) != cfg.EntityID || len(cfg.EntityID) > 1024 {
			add("entityID", "must be a URI without surrounding spaces, at most 1024 bytes")
		}
	}

	var err error
	switch {
	case cfg.SPKey == "" && cfg.SPCertificate == "":
	case cfg.SPKey == "":
		add("spKey", "required with spCertificate")
	case cfg.SPCertificate == "":
		add("spCertificate", "required with spKey")
	default:
		if s.spKey, err = parsePrivateKey(cfg.SPKey); err != nil {
			add("spKey", "%v", err)
		}
		if s.spCert, err = parseCertificate(cfg.SPCertificate); err != nil {
			add("spCertificate", "%v", err)
		}
		if s.spKey != nil && s.spCert != nil && !publicKeysEqual(s.spKey.Public(), s.spCert.PublicKey) {
			add("spCertificate", "does not hold the public key of spKey")
		}
	}
	switch {
	case cfg.SPEncryptionKey == "" && cfg.SPEncryptionCertificate == "":
	case cfg.SPEncryptionKey == "":
		add("spEncryptionKey", "required with spEncryptionCertificate")
	case cfg.SPEncryptionCertificate == "":
		add("spEncryptionCertificate", "required with spEncryptionKey")
	default:
		k, kerr := parsePrivateKey(cfg.SPEncryptionKey)
		if kerr != nil {
			add("spEncryptionKey", "%v", kerr)
		} else if rk, ok := k.(*rsa.PrivateKey); ok {
			s.encKey = rk
		} else {
			add("spEncryptionKey", "must be an RSA key (XML encryption transports keys with RSA)")
		}
		if s.encCert, err = parseCertificate(cfg.SPEncryptionCertificate); err != nil {
			add("spEncryptionCertificate", "%v", err)
		}
		if s.encKey != nil && s.encCert != nil && !publicKeysEqual(s.encKey.Public(), s.encCert.PublicKey) {
			add("spEncryptionCertificate", "does not hold the public key of spEncryptionKey")
		}
	}
	if cfg.SignAuthnRequests && cfg.SPKey == "" {
		add("signAuthnRequests", "needs spKey and spCertificate")
	}

	switch cfg.Binding {
	case "", "redirect":
	case "post":
		s.post = true
	default:
		add("binding", "must be redirect or post")
	}

	s.signedResponse = cfg.RequireSignedResponse != nil && *cfg.RequireSignedResponse
	s.signedAssertion = cfg.RequireSignedAssertion == nil || *cfg.RequireSignedAssertion
	if !s.signedResponse && !s.signedAssertion {
		add("requireSignedAssertion", "requireSignedResponse and requireSignedAssertion cannot both be false: an unsigned assertion would be accepted")
	}

	switch f := cfg.NameIDFormat; {
	case f == "":
		s.nameIDFormat = crewjam.UnspecifiedNameIDFormat
	case nameIDFormats[f] != "":
		s.nameIDFormat = nameIDFormats[f]
	case strings.HasPrefix(f, "urn:"):
		s.nameIDFormat = crewjam.NameIDFormat(f)
	default:
		add("nameIDFormat", "must be persistent, transient, emailAddress, unspecified or a urn: format")
	}

	if cfg.AllowIdPInitiated && strings.TrimSpace(cfg.DefaultClient) == "" {
		add("defaultClient", "required with allowIdPInitiated: an unsolicited login needs a client to sign in to")
	}
	if !cfg.AllowIdPInitiated && cfg.DefaultClient != "" {
		add("defaultClient", "only applies with allowIdPInitiated: true")
	}

	s.clockSkew = DefaultClockSkew
	if cfg.ClockSkew != "" {
		d, err := time.ParseDuration(cfg.ClockSkew)
		switch {
		case err != nil:
			add("clockSkew", "must be a duration such as 2m")
		case d < 0 || d > MaxClockSkew:
			add("clockSkew", "must be between 0s and %s", MaxClockSkew)
		default:
			s.clockSkew = d
		}
	}

	for i, g := range cfg.AllowedGroups {
		if strings.TrimSpace(g) == "" {
			add(fmt.Sprintf("allowedGroups[%d]", i), "must not be empty")
		}
	}
	for path, v := range map[string]string{
		"attributes.subject": cfg.Attributes.Subject, "attributes.email": cfg.Attributes.Email,
		"attributes.name": cfg.Attributes.Name, "attributes.username": cfg.Attributes.Username,
		"attributes.groups": cfg.Attributes.Groups,
	} {
		if v != "" && strings.TrimSpace(v) != v {
			add(path, "must not have surrounding spaces")
		}
	}
	s.emailVerified = cfg.EmailVerified == nil || *cfg.EmailVerified

	m, mprobs := mapping.Compile(cfg.Config, mapping.Options{TrustEmail: s.emailVerified})
	probs = append(probs, mprobs...)
	s.mapper = m

	if cfg.IdPMetadata != "" && cfg.IdPMetadataURL == "" {
		data, err := inlineMetadata(cfg.IdPMetadata)
		if err != nil {
			add("idpMetadata", "%v", err)
		} else {
			s.metadataXML = data
			// Certificate problems were reported above; check against
			// the ones that parsed.
			if len(s.metadataCerts) == len(cfg.IdPMetadataCertificates) {
				ent, err := parseMetadata(data, s.metadataCerts, cfg.IdPEntityID)
				if err == nil {
					err = checkEntity(ent, s.post)
				}
				if err != nil {
					add("idpMetadata", "%v", err)
				}
				s.entity = ent
			}
		}
	}
	sortProblems(probs)
	return s, probs
}

// sortProblems keeps the order stable (map iteration above is not).
func sortProblems(p []providers.FieldProblem) {
	for i := 1; i < len(p); i++ {
		for j := i; j > 0 && p[j].Path < p[j-1].Path; j-- {
			p[j], p[j-1] = p[j-1], p[j]
		}
	}
}

// inlineMetadata returns the metadata XML of an idpMetadata value: the
// value itself, or the content of the file a file: reference names.
func inlineMetadata(v string) ([]byte, error) {
	if path, ok := strings.CutPrefix(v, "file:"); ok && !strings.HasPrefix(path, "//") {
		f, err := os.Open(path)
		if err != nil {
			return nil, fmt.Errorf("cannot read the metadata file: %w", errors.Unwrap(err))
		}
		defer f.Close()
		data, err := io.ReadAll(io.LimitReader(f, MaxMetadataBytes+1))
		if err != nil {
			return nil, fmt.Errorf("cannot read the metadata file: %w", err)
		}
		if len(data) > MaxMetadataBytes {
			return nil, fmt.Errorf("the metadata file is larger than %d bytes", MaxMetadataBytes)
		}
		return data, nil
	}
	if len(v) > MaxMetadataBytes {
		return nil, fmt.Errorf("larger than %d bytes", MaxMetadataBytes)
	}
	return []byte(v), nil
}

// parseCertificate reads one PEM CERTIFICATE block.
func parseCertificate(s string) (*x509.Certificate, error) {
	block, rest := pem.Decode([]byte(strings.TrimSpace(s)))
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, errors.New("must be a PEM CERTIFICATE block")
	}
	if len(strings.TrimSpace(string(rest))) > 0 {
		return nil, errors.New("must be a single PEM CERTIFICATE block")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("not a valid certificate: %v", err)
	}
	return cert, nil
}

// parsePrivateKey reads a PEM private key: PKCS#8, PKCS#1 (RSA) or SEC 1
// (EC); RSA or ECDSA.
func parsePrivateKey(s string) (crypto.Signer, error) {
	block, _ := pem.Decode([]byte(strings.TrimSpace(s)))
	if block == nil {
		return nil, errors.New("must be a PEM private key")
	}
	var key any
	var err error
	switch block.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("unsupported PEM block %q (want PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY)", block.Type)
	}
	if err != nil {
		return nil, errors.New("not a valid private key")
	}
	switch k := key.(type) {
	case *rsa.PrivateKey:
		if k.N.BitLen() < 2048 {
			return nil, errors.New("RSA keys must have at least 2048 bits")
		}
		return k, nil
	case *ecdsa.PrivateKey:
		return k, nil
	default:
		return nil, errors.New("must be an RSA or ECDSA key")
	}
}

func publicKeysEqual(a, b crypto.PublicKey) bool {
	type equaler interface{ Equal(crypto.PublicKey) bool }
	e, ok := a.(equaler)
	return ok && e.Equal(b)
}
