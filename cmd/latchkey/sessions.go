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
	"github.com/latchkeyid/latchkey/broker"
	"github.com/latchkeyid/latchkey/providers/local"
	"github.com/latchkeyid/latchkey/session"
	"github.com/latchkeyid/latchkey/storage"
)

// logoutWait bounds how long a command that ends sessions waits for the
// back-channel logout deliveries (their retries take about 7 s).
const logoutWait = 30 * time.Second

func newSessionsCmd(c *cli) *cobra.Command {
	cmd := &cobra.Command{Use: "sessions", Short: "SSO sessions"}

	var listUser string
	list := &cobra.Command{
		Use:   "list",
		Short: "list a user's SSO sessions",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if listUser == "" {
				return errors.New("--username is required")
			}
			a, err := c.openApp(ctx, schemaRequire, true)
			if err != nil {
				return err
			}
			defer a.close()
			u, err := a.userByName(ctx, listUser)
			if err != nil {
				return err
			}
			sessions, err := a.sessionStore().ListByUser(ctx, u.ID)
			if err != nil {
				return fmt.Errorf("list sessions of %q: %w", listUser, err)
			}
			if c.jsonOut {
				rows := make([]api.SessionView, 0, len(sessions))
				for _, s := range sessions {
					rows = append(rows, api.ViewSession(s))
				}
				return c.printJSON(map[string]any{"username": u.Username, "sessions": rows})
			}
			w := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "SID\tCREATED\tSIGNED IN\tCONNECTOR\tAMR\tCLIENTS\tIDLE UNTIL\tENDS")
			for _, s := range sessions {
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.SID, fmtTime(s.CreatedAt), fmtTime(s.AuthTime), dash(s.ConnectorID),
					dash(strings.Join(s.AMR, ",")), dash(strings.Join(s.Clients, ",")), fmtTime(s.IdleExpiry), fmtTime(s.AbsoluteExpiry))
			}
			return w.Flush()
		},
	}
	list.Flags().StringVar(&listUser, "username", "", "user (required)")

	var revUser, revID string
	revoke := &cobra.Command{
		Use:   "revoke",
		Short: "end a user's SSO sessions (all, or the one named by --id): clients are notified, session-bound refresh tokens revoked",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if revUser == "" {
				return errors.New("--username is required")
			}
			a, err := c.openApp(ctx, schemaRequire, true)
			if err != nil {
				return err
			}
			defer a.close()
			u, err := a.userByName(ctx, revUser)
			if err != nil {
				return err
			}
			brk, err := a.sessionBroker(ctx)
			if err != nil {
				return err
			}
			var n int
			if revID != "" {
				s, err := a.sessionStore().GetBySID(ctx, revID)
				if errors.Is(err, session.ErrNoSession) || (err == nil && s.UserID != u.ID) {
					return fmt.Errorf("user %q has no session %q", revUser, revID)
				}
				if err != nil {
					return fmt.Errorf("load session: %w", err)
				}
				ok, err := brk.EndSession(ctx, revID, broker.ReasonRevoked, "cli")
				if err != nil {
					return fmt.Errorf("end session %q: %w", revID, err)
				}
				if ok {
					n = 1
				}
			} else if n, err = brk.EndSessions(ctx, u.ID, broker.ReasonRevoked, "cli"); err != nil {
				return fmt.Errorf("end sessions of %q: %w", revUser, err)
			}
			if err := a.waitLogouts(ctx, brk); err != nil {
				return err
			}
			if c.jsonOut {
				return c.printJSON(map[string]any{"username": u.Username, "ended": n})
			}
			_, err = fmt.Fprintf(c.stderr, "%s: ended %d session(s)\n", u.Username, n)
			return err
		},
	}
	revoke.Flags().StringVar(&revUser, "username", "", "user (required)")
	revoke.Flags().StringVar(&revID, "id", "", "the session's sid (from `sessions list`); default: every session of the user")

	cmd.AddCommand(list, revoke)
	return cmd
}

// userByName loads a user by username.
func (a *app) userByName(ctx context.Context, username string) (storage.User, error) {
	u, err := a.db.GetUserByUsername(ctx, username)
	if errors.Is(err, storage.ErrNotFound) {
		return storage.User{}, fmt.Errorf("no user %q", username)
	}
	if err != nil {
		return storage.User{}, fmt.Errorf("load user %q: %w", username, err)
	}
	return u, nil
}

// sessionStore is the session store over the app's ephemeral store (open
// the app withEphemeral).
func (a *app) sessionStore() *session.Store {
	return session.NewStore(a.eph, session.Options{Clock: a.clock})
}

// sessionBroker builds the broker for a command that ends sessions: it
// signs the logout tokens and delivers them through the hardened client.
func (a *app) sessionBroker(ctx context.Context) (*broker.Broker, error) {
	km, err := a.keyManager(ctx)
	if err != nil {
		return nil, err
	}
	return a.newBroker(km, local.NewHasher(local.DefaultParams, 0, 0, nil), nil)
}

// waitLogouts waits (bounded) for the back-channel logout deliveries of
// the sessions the command ended.
func (a *app) waitLogouts(ctx context.Context, brk *broker.Broker) error {
	wctx, cancel := context.WithTimeout(ctx, logoutWait)
	defer cancel()
	if err := brk.WaitLogoutDeliveries(wctx); err != nil {
		return fmt.Errorf("sessions ended, but not every client was notified in time: %w", err)
	}
	return nil
}
