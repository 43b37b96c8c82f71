package main

import (
	"context"
	"fmt"
	"github.com/latchkeyid/latchkey/broker/keys"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/latchkeyid/latchkey/storage"
)

func newConfigCmd(c *cli) *cobra.Command {
	cmd := &cobra.Command{Use: "config", Short: "work with the config file"}
	cmd.AddCommand(&cobra.Command{
		Use:   "check",
		Short: "validate the config file; list every problem with its key path",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			if _, err := c.loadConfig(); err != nil {
				return err
			}
			if c.jsonOut {
				return c.printJSON(map[string]any{"config": c.configPath, "valid": true})
			}
			_, err := fmt.Fprintf(c.stdout, "%s: valid\n", c.configPath)
			return err
		},
	})
	return cmd
}

func newMigrateCmd(c *cli) *cobra.Command {
	cmd := &cobra.Command{Use: "migrate", Short: "the database schema"}
	cmd.AddCommand(&cobra.Command{
		Use:   "up",
		Short: "apply every pending migration (under a lock)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			a, err := c.openApp(cmd.Context(), schemaMigrate, false)
			if err != nil {
				return err
			}
			defer a.close()
			_, err = fmt.Fprintln(c.stderr, "schema is up to date")
			return err
		},
	}, &cobra.Command{
		Use:   "status",
		Short: "list the migrations and which are applied",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			a, err := c.openApp(cmd.Context(), schemaIgnore, false)
			if err != nil {
				return err
			}
			defer a.close()
			st, err := a.db.MigrationStatus(cmd.Context())
			if err != nil {
				return fmt.Errorf("migration status: %w", err)
			}
			if c.jsonOut {
				return c.printJSON(map[string]any{"migrations": st})
			}
			w := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "VERSION\tNAME\tAPPLIED")
			for _, m := range st {
				applied := "pending"
				if m.Applied {
					applied = m.AppliedAt.UTC().Format(time.RFC3339)
				}
				fmt.Fprintf(w, "%d\t%s\t%s\n", m.Version, m.Source, applied)
			}
			return w.Flush()
		},
	})
	return cmd
}

func newKeysCmd(c *cli) *cobra.Command {
	cmd := &cobra.Command{Use: "keys", Short: "signing keys"}
	cmd.AddCommand(&cobra.Command{
		Use:   "list",
		Short: "list signing keys (no private material)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return c.withKeys(cmd.Context(), func(ctx context.Context, _ *app, km *keys.Manager) error {
				list, err := km.List(ctx)
				if err != nil {
					return fmt.Errorf("list keys: %w", err)
				}
				if c.jsonOut {
					return c.printJSON(map[string]any{"keys": list})
				}
				w := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(w, "KID\tALG\tSTATE\tCREATED\tSIGNS FROM\tLEAVES JWKS\tSEALED BY")
				for _, k := range list {
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", k.KID, k.Algorithm, k.State,
						fmtTime(k.Created), fmtTime(k.Activates), fmtTime(k.Retires), k.EncryptionKey)
				}
				return w.Flush()
			})
		},
	}, &cobra.Command{
		Use:   "rotate",
		Short: "rotate now: the pre-published next key starts signing",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return c.withKeys(cmd.Context(), func(ctx context.Context, _ *app, km *keys.Manager) error {
				rotated, err := km.Rotate(ctx, true)
				if err != nil {
					return fmt.Errorf("rotate keys: %w", err)
				}
				if !rotated {
					return fmt.Errorf("rotate keys: another replica rotated at the same moment; run `latchkey keys list`")
				}
				_, err = fmt.Fprintln(c.stderr, "rotated: the former next keys now sign; new next keys are published")
				return err
			})
		},
	}, &cobra.Command{
		Use:   "rewrap",
		Short: "re-encrypt every secret at rest under the first encryption key",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return c.withKeys(cmd.Context(), func(ctx context.Context, a *app, km *keys.Manager) error {
				n, err := km.Rewrap(ctx)
				if err != nil {
					return fmt.Errorf("rewrap signing keys: %w", err)
				}
				first := a.cfg.Keys.EncryptionKeys[0].ID
				if c.jsonOut {
					return c.printJSON(map[string]any{"rewrapped": n, "encryption_key": first})
				}
				_, err = fmt.Fprintf(c.stderr, "rewrapped %d secret(s) under encryption key %q\n", n, first)
				return err
			})
		},
	})
	return cmd
}

// withKeys opens the stores (refusing an unmigrated schema) and the
// signing keys, runs fn, and closes everything.
func (c *cli) withKeys(ctx context.Context, fn func(context.Context, *app, *keys.Manager) error) error {
	a, err := c.openApp(ctx, schemaRequire, false)
	if err != nil {
		return err
	}
	defer a.close()
	km, err := a.keyManager(ctx)
	if err != nil {
		return err
	}
	return fn(ctx, a, km)
}

func newAuditCmd(c *cli) *cobra.Command {
	var since, typ, username string
	var limit int
	cmd := &cobra.Command{Use: "audit", Short: "the audit log"}
	list := &cobra.Command{
		Use:   "list",
		Short: "list audit events, oldest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			f := storage.EventFilter{Type: typ, Limit: limit}
			if since != "" {
				t, err := parseSince(since, time.Now())
				if err != nil {
					return err
				}
				f.Since = t
			}
			a, err := c.openApp(ctx, schemaRequire, false)
			if err != nil {
				return err
			}
			defer a.close()
			if username != "" {
				u, err := a.db.GetUserByUsername(ctx, username)
				if err != nil {
					return fmt.Errorf("user %q: %w", username, err)
				}
				f.UserID = u.ID
			}
			events, err := a.db.ListEvents(ctx, f)
			if err != nil {
				return fmt.Errorf("list audit events: %w", err)
			}
			if c.jsonOut {
				if events == nil {
					events = []storage.Event{}
				}
				return c.printJSON(map[string]any{"events": events})
			}
			w := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "TIME\tTYPE\tACTOR\tUSER\tCLIENT\tCONNECTOR\tIP")
			for _, e := range events {
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", fmtTime(e.Time), e.Type, dash(e.Actor),
					dash(e.UserID), dash(e.ClientID), dash(e.ConnectorID), dash(e.IP))
			}
			return w.Flush()
		},
	}
	list.Flags().StringVar(&since, "since", "", "only events at or after this time: RFC 3339, a date (2026-01-02) or a duration ago (24h)")
	list.Flags().StringVar(&typ, "type", "", "only events of this type (e.g. keys.rotated)")
	list.Flags().StringVar(&username, "username", "", "only events about this user")
	list.Flags().IntVar(&limit, "limit", 0, "at most this many events (0: all)")
	cmd.AddCommand(list)
	return cmd
}

// parseSince accepts RFC 3339, a date, or a duration meaning that long ago.
func parseSince(s string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("--since %q: want RFC 3339 (2026-01-02T15:04:05Z), a date (2026-01-02) or a duration (24h)", s)
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
