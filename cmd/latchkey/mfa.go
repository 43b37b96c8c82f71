package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/latchkeyid/latchkey/broker"
	"github.com/latchkeyid/latchkey/internal/clock"
	"github.com/latchkeyid/latchkey/internal/config"
	"github.com/latchkeyid/latchkey/internal/secretbox"
	"github.com/latchkeyid/latchkey/mfa"
	"github.com/latchkeyid/latchkey/mfa/policy"
	"github.com/latchkeyid/latchkey/mfa/recovery"
	"github.com/latchkeyid/latchkey/mfa/totp"
	"github.com/latchkeyid/latchkey/storage"
)

// mfaFactorTypes are the factors this binary registers for cfg
// (WebAuthn where webauthnOptions says so: cmd/latchkey/webauthn.go; SMS
// and e-mail codes where mfa.sms.enabled and mfa.email.enabled say so:
// cmd/latchkey/notify.go).
func mfaFactorTypes(cfg *config.Config) []string {
	types := []string{mfa.TypeRecovery, mfa.TypeTOTP}
	if _, on := webauthnOptions(cfg); on {
		types = append(types, mfa.TypeWebAuthn)
	}
	if cfg.MFA.SMS.Enabled {
		types = append(types, mfa.TypeSMS)
	}
	if cfg.MFA.Email.Enabled {
		types = append(types, mfa.TypeEmail)
	}
	return types
}

func mfaRule(r config.MFARule) policy.Rule {
	return policy.Rule{Mode: policy.Mode(r.Mode), Factors: r.Factors, MaxAge: r.MaxAge, NoEnrollment: r.NoEnrollment}
}

func mfaRules(m map[string]config.MFARule) map[string]policy.Rule {
	if m == nil {
		return nil
	}
	out := make(map[string]policy.Rule, len(m))
	for k, r := range m {
		out[k] = mfaRule(r)
	}
	return out
}

// mfaPolicy builds the policy of the config's mfa.policy; its problems
// come back as config problems under mfa.policy.
func mfaPolicy(cfg *config.Config, clk clock.Clock) (*policy.Policy, error) {
	p := cfg.MFA.Policy
	pol, err := policy.New(policy.Config{Default: mfaRule(p.Default), Clients: mfaRules(p.Clients),
		Connectors: mfaRules(p.Connectors), Groups: mfaRules(p.Groups)}, mfaFactorTypes(cfg), clk)
	var ce *policy.ConfigError
	if errors.As(err, &ce) {
		probs := &config.Problems{}
		for _, pr := range ce.Problems {
			probs.List = append(probs.List, config.Problem{Path: "mfa.policy." + pr.Path, Message: pr.Message})
		}
		return nil, probs
	}
	return pol, err
}

// mfaOptions wires TOTP and recovery codes with the configured policy.
func mfaOptions(cfg *config.Config, ring *secretbox.Keyring, db storage.Durable, clk clock.Clock) (*broker.MFAOptions, error) {
	t := cfg.MFA.TOTP
	tf, err := totp.New(totp.Options{Issuer: t.Issuer, Algorithm: t.Algorithm, Digits: t.Digits, Period: t.Period, Sealer: ring, Clock: clk})
	if err != nil {
		return nil, fmt.Errorf("mfa.totp: %w", err)
	}
	reg, err := mfa.NewRegistry(tf, recovery.New(recovery.Options{Clock: clk}))
	if err != nil {
		return nil, err
	}
	if err := addWebAuthn(reg, cfg, clk); err != nil { // cmd/latchkey/webauthn.go
		return nil, err
	}
	pol, err := mfaPolicy(cfg, clk)
	if err != nil {
		return nil, err
	}
	return &broker.MFAOptions{Factors: reg, Policy: pol, Store: db}, nil
}

func newMFACmd(c *cli) *cobra.Command {
	cmd := &cobra.Command{Use: "mfa", Short: "second factors"}
	var username string
	reset := &cobra.Command{
		Use:   "reset",
		Short: "remove every second factor of a user (they enroll again at the next sign-in that needs one)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if username == "" {
				return errors.New("--username is required")
			}
			ctx := cmd.Context()
			a, err := c.openApp(ctx, schemaRequire, false)
			if err != nil {
				return err
			}
			defer a.close()
			var n int64
			err = a.db.Tx(ctx, func(ctx context.Context, tx storage.Durable) error {
				u, err := tx.GetUserByUsername(ctx, username)
				if err != nil {
					return err
				}
				if n, err = tx.DeleteUserMFACredentials(ctx, u.ID); err != nil {
					return err
				}
				return tx.AppendEvent(ctx, storage.Event{Type: "mfa.reset", Actor: "cli", UserID: u.ID,
					Data: map[string]any{"username": u.Username, "removed": n}})
			})
			if errors.Is(err, storage.ErrNotFound) {
				return fmt.Errorf("no user %q", username)
			}
			if err != nil {
				return fmt.Errorf("reset second factors of %q: %w", username, err)
			}
			if c.jsonOut {
				return c.printJSON(map[string]any{"username": username, "removed": n})
			}
			_, err = fmt.Fprintf(c.stderr, "removed %d second factor(s) of user %q\n", n, username)
			return err
		},
	}
	reset.Flags().StringVar(&username, "username", "", "user (required)")

	var rcUser string
	codes := &cobra.Command{
		Use:   "recovery-codes",
		Short: "make a new set of 10 recovery codes for a user (the old set stops working); prints them once",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if rcUser == "" {
				return errors.New("--username is required")
			}
			ctx := cmd.Context()
			a, err := c.openApp(ctx, schemaRequire, false)
			if err != nil {
				return err
			}
			defer a.close()
			list, err := regenerateRecoveryCodes(ctx, a.db, recovery.New(recovery.Options{Clock: a.clock}), rcUser)
			if err != nil {
				return err
			}
			if c.jsonOut {
				return c.printJSON(map[string]any{"username": rcUser, "recovery_codes": list})
			}
			fmt.Fprintf(c.stderr, "new recovery codes for %q (the previous set no longer works):\n", rcUser)
			_, err = fmt.Fprintln(c.stdout, strings.Join(list, "\n"))
			return err
		},
	}
	codes.Flags().StringVar(&rcUser, "username", "", "user (required)")
	cmd.AddCommand(reset, codes)
	cmd.AddCommand(newMFAFactorCmds(c)...) // cmd/latchkey/mfa_factors.go
	return cmd
}

// regenerateRecoveryCodes replaces the user's recovery-code set (or makes
// the first one) in one transaction with an audit event, and returns the
// new codes. Recovery codes back up another factor: a user without one
// gets none.
func regenerateRecoveryCodes(ctx context.Context, db storage.Durable, f *recovery.Factor, username string) ([]string, error) {
	var codes []string
	err := db.Tx(ctx, func(ctx context.Context, tx storage.Durable) error {
		u, err := tx.GetUserByUsername(ctx, username)
		if err != nil {
			return err
		}
		creds, err := tx.ListMFACredentials(ctx, u.ID)
		if err != nil {
			return err
		}
		if !slices.ContainsFunc(creds, func(c storage.MFACredential) bool { return c.Type != mfa.TypeRecovery }) {
			return errNoFactor
		}
		codes, err = f.Issue(ctx, tx, u.ID)
		if err != nil {
			return err
		}
		return tx.AppendEvent(ctx, storage.Event{Type: "mfa.recovery.regenerated", Actor: "cli", UserID: u.ID,
			Data: map[string]any{"username": u.Username}})
	})
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return nil, fmt.Errorf("no user %q", username)
	case errors.Is(err, errNoFactor):
		return nil, fmt.Errorf("user %q has no second factor: recovery codes back one up (enroll a factor first)", username)
	case err != nil:
		return nil, fmt.Errorf("recovery codes of %q: %w", username, err)
	}
	return codes, nil
}

var errNoFactor = errors.New("no second factor")
