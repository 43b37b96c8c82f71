package main

import (
	"context"
	"errors"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/latchkeyid/latchkey/mfa"
	"github.com/latchkeyid/latchkey/storage"
)

// newMFAFactorCmds are `mfa list` (a user's second factors: id, type,
// name, when made and last used; never their data) and `mfa remove` (one
// of them, such as a lost security key).
func newMFAFactorCmds(c *cli) []*cobra.Command {
	var listUser string
	list := withApp(c, &cobra.Command{Use: "list", Short: "list a user's second factors (security keys and passkeys by name)"},
		func(ctx context.Context, a *app) error {
			if listUser == "" {
				return errors.New("--username is required")
			}
			u, err := a.db.GetUserByUsername(ctx, listUser)
			if errors.Is(err, storage.ErrNotFound) {
				return fmt.Errorf("no user %q", listUser)
			}
			if err != nil {
				return fmt.Errorf("load user %q: %w", listUser, err)
			}
			creds, err := a.db.ListMFACredentials(ctx, u.ID)
			if err != nil {
				return fmt.Errorf("list second factors of %q: %w", listUser, err)
			}
			type row struct {
				ID         string    `json:"id"`
				Type       string    `json:"type"`
				Label      string    `json:"label,omitempty"`
				CreatedAt  time.Time `json:"created_at"`
				LastUsedAt time.Time `json:"last_used_at,omitzero"`
			}
			rows := []row{}
			for _, cr := range creds {
				rows = append(rows, row{cr.ID, cr.Type, cr.Label, cr.CreatedAt, cr.LastUsedAt})
			}
			if c.jsonOut {
				return c.printJSON(map[string]any{"username": u.Username, "factors": rows})
			}
			w := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "ID\tTYPE\tNAME\tCREATED\tLAST USED")
			for _, r := range rows {
				last := "-"
				if !r.LastUsedAt.IsZero() {
					last = r.LastUsedAt.UTC().Format(time.RFC3339)
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", r.ID, r.Type, r.Label, r.CreatedAt.UTC().Format(time.RFC3339), last)
			}
			return w.Flush()
		})
	list.Flags().StringVar(&listUser, "username", "", "user (required)")

	var rmUser, rmID string
	remove := withApp(c, &cobra.Command{Use: "remove", Short: "remove one second factor of a user (see mfa list for the id)"},
		func(ctx context.Context, a *app) error {
			if rmUser == "" || rmID == "" {
				return errors.New("--username and --id are required")
			}
			var removed storage.MFACredential
			var orphans []storage.MFACredential
			var missing error // what was not found, said plainly
			err := a.db.Tx(ctx, func(ctx context.Context, tx storage.Durable) error {
				u, err := tx.GetUserByUsername(ctx, rmUser)
				if errors.Is(err, storage.ErrNotFound) {
					missing = fmt.Errorf("no user %q", rmUser)
				}
				if err != nil {
					return err
				}
				cr, err := tx.GetMFACredential(ctx, rmID)
				if errors.Is(err, storage.ErrNotFound) || (err == nil && cr.UserID != u.ID) {
					missing = fmt.Errorf("user %q has no second factor %q", rmUser, rmID)
					return storage.ErrNotFound
				}
				if err != nil {
					return err
				}
				if orphans, err = mfa.Remove(ctx, tx, cr); err != nil {
					return err
				}
				removed = cr
				for _, o := range orphans {
					if err := tx.AppendEvent(ctx, storage.Event{Type: "mfa.removed", Actor: "cli", UserID: u.ID,
						Data: map[string]any{"username": u.Username, "credential_id": o.ID, "factor": o.Type, "label": o.Label, "reason": "last_factor_removed"}}); err != nil {
						return err
					}
				}
				return tx.AppendEvent(ctx, storage.Event{Type: "mfa.removed", Actor: "cli", UserID: u.ID,
					Data: map[string]any{"username": u.Username, "credential_id": cr.ID, "factor": cr.Type, "label": cr.Label}})
			})
			if missing != nil && errors.Is(err, storage.ErrNotFound) {
				return missing
			}
			if err != nil {
				return fmt.Errorf("remove second factor %q of %q: %w", rmID, rmUser, err)
			}
			if c.jsonOut {
				out := map[string]any{"username": rmUser, "removed": removed.ID, "type": removed.Type, "label": removed.Label}
				if len(orphans) > 0 {
					var ids []string
					for _, o := range orphans {
						ids = append(ids, o.ID)
					}
					out["alsoRemoved"] = ids
				}
				return c.printJSON(out)
			}
			_, err = fmt.Fprintf(c.stderr, "removed %s %q (%s) of user %q\n", removed.Type, removed.Label, removed.ID, rmUser)
			for _, o := range orphans {
				if err == nil {
					_, err = fmt.Fprintf(c.stderr, "removed %s %q (%s) too: no other second factor is left\n", o.Type, o.Label, o.ID)
				}
			}
			return err
		})
	remove.Flags().StringVar(&rmUser, "username", "", "user (required)")
	remove.Flags().StringVar(&rmID, "id", "", "second factor id from mfa list (required)")
	return []*cobra.Command{list, remove}
}

// withApp makes cmd (no arguments) run fn with the app opened on a
// migrated schema.
func withApp(c *cli, cmd *cobra.Command, fn func(context.Context, *app) error) *cobra.Command {
	cmd.Args = cobra.NoArgs
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		a, err := c.openApp(cmd.Context(), schemaRequire, false)
		if err != nil {
			return err
		}
		defer a.close()
		return fn(cmd.Context(), a)
	}
	return cmd
}
