package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/latchkeyid/latchkey/broker"
	"github.com/latchkeyid/latchkey/internal/clock"
	"github.com/latchkeyid/latchkey/internal/config"
	"github.com/latchkeyid/latchkey/internal/httpclient"
	"github.com/latchkeyid/latchkey/internal/secretbox"
	"github.com/latchkeyid/latchkey/providers"
	"github.com/latchkeyid/latchkey/providers/apple"
	"github.com/latchkeyid/latchkey/providers/facebook"
	"github.com/latchkeyid/latchkey/providers/github"
	"github.com/latchkeyid/latchkey/providers/ldap"
	oauth2conn "github.com/latchkeyid/latchkey/providers/oauth2"
	"github.com/latchkeyid/latchkey/providers/oidc"
	"github.com/latchkeyid/latchkey/providers/saml"
	"github.com/latchkeyid/latchkey/storage"
)

// connectorRegistry is every connector type this binary knows (no init()
// registration: CONVENTIONS.md 4). Its saml type validates configs only:
// opening a saml connector needs the issuer and the replay cache on the
// ephemeral store, which samlType adds (openConnectors, `saml
// sp-metadata`).
func connectorRegistry() providers.Registry {
	return providers.Registry{
		"oidc":        oidc.Type{},
		"oauth2":      oauth2conn.Type{},
		"ldap":        ldap.Type{},
		"github":      github.Type{},
		"facebook":    facebook.Type{},
		"apple":       apple.Type{},
		saml.TypeName: saml.Type{},
	}
}

// samlType is the saml connector type that opens connectors: SP
// endpoints under the issuer, assertion IDs remembered in the ephemeral
// store (shared by every replica).
func samlType(issuer string, eph storage.Ephemeral, clk clock.Clock) saml.Type {
	return saml.Type{BaseURL: issuer, Replay: broker.NewSAMLReplayCache(eph, clk)}
}

// connectorValidators adapts the registry to config.WithConnectorTypes:
// each type validates connectors[i].config, problems keep their paths.
func connectorValidators(reg providers.Registry) map[string]config.ConnectorValidator {
	out := make(map[string]config.ConnectorValidator, len(reg))
	for name, typ := range reg {
		out[name] = func(raw json.RawMessage) []config.Problem {
			probs := typ.Validate(raw)
			res := make([]config.Problem, 0, len(probs))
			for _, p := range probs {
				res = append(res, config.Problem{Path: p.Path, Message: p.Message})
			}
			return res
		}
	}
	return out
}

// secretKeys are the connector config keys that hold secrets: they are
// sealed at rest with the keyring ("sealed:" + secretbox text, the
// connector id and key as additional data).
var secretKeys = []string{"clientSecret", "bindPassword", "privateKey", "spKey", "spEncryptionKey"}

const sealedPrefix = "sealed:"

func secretAD(connectorID, key string) []byte {
	return []byte("latchkey connector secret\x00" + connectorID + "\x00" + key)
}

// sealConnectorSecrets returns c with the secrets in its config sealed.
func sealConnectorSecrets(ring *secretbox.Keyring, c storage.Connector) (storage.Connector, error) {
	if len(c.Config) == 0 {
		return c, nil
	}
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(c.Config, &doc); err != nil {
		return c, nil // the type's validation reports it
	}
	changed := false
	for _, k := range secretKeys {
		var v string
		if raw, ok := doc[k]; !ok || json.Unmarshal(raw, &v) != nil || v == "" || strings.HasPrefix(v, sealedPrefix) {
			continue
		}
		sealed, err := ring.Seal([]byte(v), secretAD(c.ID, k))
		if err != nil {
			return c, fmt.Errorf("seal connector %q %s: %w", c.ID, k, err)
		}
		doc[k], _ = json.Marshal(sealedPrefix + sealed)
		changed = true
	}
	if changed {
		out, err := json.Marshal(doc)
		if err != nil {
			return c, err
		}
		c.Config = out
	}
	return c, nil
}

// unsealConnectorSecrets returns the config of c with its secrets in
// clear, to open the connector with.
func unsealConnectorSecrets(ring *secretbox.Keyring, c storage.Connector) (json.RawMessage, error) {
	if len(c.Config) == 0 {
		return c.Config, nil
	}
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(c.Config, &doc); err != nil {
		return c.Config, nil
	}
	changed := false
	for _, k := range secretKeys {
		var v string
		if raw, ok := doc[k]; !ok || json.Unmarshal(raw, &v) != nil || !strings.HasPrefix(v, sealedPrefix) {
			continue
		}
		plain, err := ring.Open(strings.TrimPrefix(v, sealedPrefix), secretAD(c.ID, k))
		if err != nil {
			return nil, fmt.Errorf("open connector %q %s: %w", c.ID, k, err)
		}
		doc[k], _ = json.Marshal(string(plain))
		changed = true
	}
	if !changed {
		return c.Config, nil
	}
	return json.Marshal(doc)
}

// enabledConnectors lists the stored connectors that are not disabled:
// the ones the login offers (a disabled one is closed at the next poll).
type enabledConnectors struct {
	db interface {
		ListConnectors(ctx context.Context) ([]storage.Connector, error)
	}
}

func (e enabledConnectors) ListConnectors(ctx context.Context) ([]storage.Connector, error) {
	all, err := e.db.ListConnectors(ctx)
	if err != nil {
		return nil, err
	}
	out := all[:0:0]
	for _, c := range all {
		if !c.Disabled {
			out = append(out, c)
		}
	}
	return out, nil
}

// connectorPollInterval is how often a replica looks for changed
// connectors (any replica's CLI, API or config change).
const connectorPollInterval = 5 * time.Second

// openConnectors opens every stored connector with the hardened client
// (outbound.allowedNetworks), the clock, the logger and the keyring.
func (a *app) openConnectors(ctx context.Context) (*broker.Connectors, error) {
	o := a.cfg.Outbound
	deps := providers.Deps{
		HTTPClient: httpclient.New(httpclient.Options{
			Timeout: o.Timeout, MaxBodyBytes: o.MaxBodyBytes.Int64(), AllowedNetworks: o.AllowedNetworks, Logger: a.log,
		}),
		Clock: a.clock, Logger: a.log, Sealer: a.keyring,
	}
	reg := connectorRegistry()
	reg[saml.TypeName] = samlType(a.cfg.Issuer, a.eph, a.clock)
	conns := broker.NewConnectors(reg, deps, func(c storage.Connector) (json.RawMessage, error) {
		return unsealConnectorSecrets(a.keyring, c)
	}, a.log)
	list, err := enabledConnectors{a.db}.ListConnectors(ctx)
	if err != nil {
		return nil, fmt.Errorf("list connectors: %w", err)
	}
	if err := conns.Sync(ctx, list); err != nil {
		// The others keep working; the log names each failure.
		a.log.ErrorContext(ctx, "some connectors could not be opened", slog.Any("error", err))
	}
	return conns, nil
}
