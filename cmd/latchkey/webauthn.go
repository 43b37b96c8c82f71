package main

import (
	"fmt"
	"net"
	"net/url"

	"github.com/latchkeyid/latchkey/internal/clock"
	"github.com/latchkeyid/latchkey/internal/config"
	"github.com/latchkeyid/latchkey/mfa"
	"github.com/latchkeyid/latchkey/mfa/webauthn"
)

// webauthnOptions derives the WebAuthn factor's options from the config:
// the RP ID is mfa.webauthn.rpID or the issuer's host, the origins
// mfa.webauthn.origins or the issuer's origin. on is false when
// mfa.webauthn.disabled, or when no rpID is configured and the issuer's
// host is an IP address (browsers refuse WebAuthn there).
func webauthnOptions(cfg *config.Config) (webauthn.Options, bool) {
	w := cfg.MFA.WebAuthn
	if w.Disabled {
		return webauthn.Options{}, false
	}
	u, err := url.Parse(cfg.Issuer)
	if err != nil || u.Host == "" {
		return webauthn.Options{}, false
	}
	o := webauthn.Options{RPID: w.RPID, RPName: w.RPName, Origins: w.Origins, UserVerification: w.UserVerification,
		ResidentKey: w.ResidentKey, Attestation: w.Attestation, AllowedAAGUIDs: w.AllowedAAGUIDs}
	if o.RPID == "" {
		if net.ParseIP(u.Hostname()) != nil {
			return webauthn.Options{}, false
		}
		o.RPID = u.Hostname()
	}
	if len(o.Origins) == 0 {
		o.Origins = []string{u.Scheme + "://" + u.Host}
	}
	return o, true
}

// addWebAuthn registers the WebAuthn factor in reg when the config turns
// it on.
func addWebAuthn(reg mfa.Registry, cfg *config.Config, clk clock.Clock) error {
	o, on := webauthnOptions(cfg)
	if !on {
		return nil
	}
	o.Clock = clk
	f, err := webauthn.New(o)
	if err != nil {
		return fmt.Errorf("mfa.webauthn: %w", err)
	}
	reg[mfa.TypeWebAuthn] = f
	return nil
}
