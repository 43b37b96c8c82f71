package main

import (
	"context"
	"errors"
	"fmt"

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

// mfaFactorTypes are the factors this binary registers.
var mfaFactorTypes = []string{mfa.TypeRecovery, mfa.TypeTOTP}

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
		Connectors: mfaRules(p.Connectors), Groups: mfaRules(p.Groups)}, mfaFactorTypes, clk)
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
	cmd.AddCommand(reset)
	return cmd
}
