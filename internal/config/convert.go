package config

import (
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"time"

	"github.com/latchkeyid/latchkey/storage"
)

// ToStorage returns the client as a storage record, marked ConfigManaged,
// with CreatedAt and UpdatedAt set to now. The secret is stored as its hex
// SHA-256; slices are copies.
func (c ClientConfig) ToStorage(now time.Time) storage.Client {
	var hash string
	if c.Secret != "" {
		sum := sha256.Sum256([]byte(c.Secret.Reveal()))
		hash = hex.EncodeToString(sum[:])
	}
	requirePKCE, firstParty := c.RequirePKCE, c.FirstParty
	return storage.Client{
		ID:                      c.ID,
		Name:                    c.Name,
		SecretHash:              hash,
		Public:                  c.Public,
		RedirectURIs:            slices.Clone(c.RedirectURIs),
		PostLogoutRedirectURIs:  slices.Clone(c.PostLogoutRedirectURIs),
		GrantTypes:              slices.Clone(c.GrantTypes),
		ResponseTypes:           slices.Clone(c.ResponseTypes),
		TokenEndpointAuthMethod: c.TokenEndpointAuthMethod,
		ApplicationType:         c.ApplicationType,
		IDTokenSignedAlg:        c.IDTokenSignedAlg,
		RequirePKCE:             &requirePKCE,
		FirstParty:              &firstParty,
		Audience:                slices.Clone(c.Audience),
		AllowedConnectors:       slices.Clone(c.AllowedConnectors),
		Scope:                   c.Scope,
		SessionBoundRefresh:     c.SessionBoundRefresh,
		BackchannelLogoutURI:    c.BackchannelLogoutURI,
		FrontchannelLogoutURI:   c.FrontchannelLogoutURI,
		JWKS:                    slices.Clone(c.JWKS),
		JWKSURI:                 c.JWKSURI,
		ConfigManaged:           true,
		CreatedAt:               now,
		UpdatedAt:               now,
	}
}

// ToStorage returns the connector as a storage record, marked
// ConfigManaged, with CreatedAt and UpdatedAt set to now. Config is the
// plaintext JSON from the file: whoever writes the record encrypts the
// secrets in it (storage.Connector's contract).
func (c ConnectorConfig) ToStorage(now time.Time) storage.Connector {
	return storage.Connector{
		ID:            c.ID,
		Type:          c.Type,
		Name:          c.Name,
		Config:        c.Config.JSON(),
		ConfigManaged: true,
		CreatedAt:     now,
		UpdatedAt:     now,
	}
}
