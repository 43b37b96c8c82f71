package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/latchkeyid/latchkey/api"
	"github.com/latchkeyid/latchkey/storage"
)

// apiKeyState says what a key is at now: active, expired, revoked, or
// active until its overlap ends after a rotation.
func apiKeyState(k storage.APIKey, now time.Time) string {
	switch {
	case !k.RevokedAt.IsZero():
		return "revoked"
	case !k.Active(now):
		return "expired"
	case k.ReplacedBy != "":
		return "rotated"
	}
	return "active"
}

// parseExpiry reads --expires: a duration from now (90d, 720h) or an RFC
// 3339 time; "" or "never" is no expiry.
func parseExpiry(s string, now time.Time) (time.Time, error) {
	switch s {
	case "", "never":
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		if !t.After(now) {
			return time.Time{}, fmt.Errorf("--expires %s: in the past", s)
		}
		return t, nil
	}
	d, err := parseDays(s)
	if err != nil || d <= 0 {
		return time.Time{}, fmt.Errorf("--expires %q: want a duration from now (90d, 720h), an RFC 3339 time or never", s)
	}
	return now.Add(d), nil
}

// parseDays is time.ParseDuration that also accepts whole days ("90d").
func parseDays(s string) (time.Duration, error) {
	if n, ok := strings.CutSuffix(s, "d"); ok {
		var days int
		if _, err := fmt.Sscanf(n, "%d", &days); err != nil || fmt.Sprint(days) != n || days > 36500 {
			return 0, errors.New("bad days")
		}
		return time.Duration(days) * 24 * time.Hour, nil
	}
	return time.ParseDuration(s)
}

func newAPIKeysCmd(c *cli) *cobra.Command {
	cmd := &cobra.Command{Use: "apikeys", Short: "admin API keys"}

	var scopes []string
	var expires, name string
	create := &cobra.Command{
		Use:   "create",
		Short: "create an admin API key with scopes; the key is printed once on stdout",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if probs := api.CheckScopes(scopes); len(probs) > 0 {
				msgs := make([]string, len(probs))
				for i, p := range probs {
					msgs[i] = "--" + p.Field + ": " + p.Message
				}
				return errors.New(strings.Join(msgs, "\n"))
			}
			exp, err := parseExpiry(expires, c.now())
			if err != nil {
				return err
			}
			return c.withApp(ctx, func(ctx context.Context, a *app) error {
				token, k, err := api.Keys{Store: a.db, Clock: a.clock}.Create(ctx, name, scopes, exp, "cli")
				if err != nil {
					return err
				}
				summary := fmt.Sprintf("created API key %s with scopes %s, expires %s (the key is shown once)",
					k.Prefix, strings.Join(k.Scopes, ","), expiryText(k.ExpiresAt))
				return c.printCreated(map[string]any{"prefix": k.Prefix, "scopes": k.Scopes, "expires_at": k.ExpiresAt},
					"key", token, true, summary)
			})
		},
	}
	create.Flags().StringSliceVar(&scopes, "scopes", nil, "scopes, comma-separated: "+strings.Join(api.ScopeExamples(), ",")+" or RESOURCE:* (required)")
	create.Flags().StringVar(&expires, "expires", "90d", "expiry: a duration from now (90d, 720h), an RFC 3339 time, or never")
	create.Flags().StringVar(&name, "name", "", "what the key is for")

	list := &cobra.Command{
		Use:   "list",
		Short: "list admin API keys (prefixes, never the keys)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return c.withApp(cmd.Context(), c.listAPIKeys)
		},
	}

	var revokePrefix string
	revoke := &cobra.Command{
		Use:   "revoke",
		Short: "revoke an admin API key now",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if revokePrefix == "" {
				return errors.New("--prefix is required")
			}
			return c.withApp(ctx, func(ctx context.Context, a *app) error {
				err := api.Keys{Store: a.db, Clock: a.clock}.Revoke(ctx, revokePrefix, "cli")
				if errors.Is(err, storage.ErrNotFound) {
					return fmt.Errorf("no API key %q", revokePrefix)
				}
				if err != nil {
					return err
				}
				if c.jsonOut {
					return c.printJSON(map[string]any{"prefix": revokePrefix, "revoked": true})
				}
				_, err = fmt.Fprintf(c.stderr, "revoked API key %s\n", revokePrefix)
				return err
			})
		},
	}
	revoke.Flags().StringVar(&revokePrefix, "prefix", "", "the key's prefix, from `apikeys list` (required)")

	var rotatePrefix, overlap string
	rotate := &cobra.Command{
		Use:   "rotate",
		Short: "replace an admin API key: the new key is printed once; the old one works for the overlap",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if rotatePrefix == "" {
				return errors.New("--prefix is required")
			}
			d, err := parseDays(overlap)
			if err != nil || d < 0 {
				return fmt.Errorf("--overlap %q: want a duration (24h, 7d, 0s)", overlap)
			}
			return c.withApp(ctx, func(ctx context.Context, a *app) error {
				token, k, err := api.Keys{Store: a.db, Clock: a.clock}.Rotate(ctx, rotatePrefix, d, "cli")
				switch {
				case errors.Is(err, storage.ErrNotFound):
					return fmt.Errorf("no API key %q", rotatePrefix)
				case errors.Is(err, api.ErrKeyInactive):
					return fmt.Errorf("API key %s is revoked, expired or already rotated: create a new one", rotatePrefix)
				case err != nil:
					return err
				}
				summary := fmt.Sprintf("rotated API key %s: the new key is %s (shown once); the old key works for %s more at most",
					rotatePrefix, k.Prefix, d)
				return c.printCreated(map[string]any{"prefix": k.Prefix, "replaces": rotatePrefix, "scopes": k.Scopes, "expires_at": k.ExpiresAt},
					"key", token, true, summary)
			})
		},
	}
	rotate.Flags().StringVar(&rotatePrefix, "prefix", "", "the key's prefix (required)")
	rotate.Flags().StringVar(&overlap, "overlap", "24h", "how long the old key keeps working")

	cmd.AddCommand(create, list, revoke, rotate)
	return cmd
}

func expiryText(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return fmtTime(t)
}

// listAPIKeys prints the keys: prefixes and states, never keys or hashes.
func (c *cli) listAPIKeys(ctx context.Context, a *app) error {
	keys, err := a.db.ListAPIKeys(ctx)
	if err != nil {
		return fmt.Errorf("list api keys: %w", err)
	}
	now := a.clock.Now()
	if c.jsonOut {
		type row struct {
			storage.APIKey
			Hash  string `json:"hash,omitempty"`
			State string `json:"state"`
		}
		rows := make([]row, 0, len(keys))
		for _, k := range keys {
			rows = append(rows, row{APIKey: k, State: apiKeyState(k, now)})
		}
		return c.printJSON(map[string]any{"apikeys": rows})
	}
	w := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "PREFIX\tNAME\tSCOPES\tSTATE\tCREATED\tEXPIRES\tLAST USED")
	for _, k := range keys {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", k.Prefix, dash(k.Name), strings.Join(k.Scopes, ","),
			apiKeyState(k, now), fmtTime(k.CreatedAt), expiryText(k.ExpiresAt), fmtTime(k.LastUsedAt))
	}
	return w.Flush()
}

// withApp opens the stores (refusing an unmigrated schema), runs fn and
// closes them.
func (c *cli) withApp(ctx context.Context, fn func(context.Context, *app) error) error {
	a, err := c.openApp(ctx, schemaRequire, false)
	if err != nil {
		return err
	}
	defer a.close()
	return fn(ctx, a)
}
