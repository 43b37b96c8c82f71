package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/latchkeyid/latchkey/broker"
	"github.com/latchkeyid/latchkey/storage"
)

// newUsersUnlinkCmd is `users unlink --username U --connector ID`: remove
// the user's identities at an upstream connector (identity.unlinked),
// never the last way in.
func newUsersUnlinkCmd(c *cli) *cobra.Command {
	var username, connector string
	cmd := &cobra.Command{
		Use:   "unlink",
		Short: "unlink a user's identity at an upstream connector (refused for the last way to sign in)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch {
			case username == "":
				return errors.New("--username is required")
			case connector == "":
				return errors.New("--connector is required")
			}
			ctx := cmd.Context()
			a, err := c.openApp(ctx, schemaRequire, false)
			if err != nil {
				return err
			}
			defer a.close()
			u, err := a.userByName(ctx, username)
			if err != nil {
				return err
			}
			n, err := broker.Unlink(ctx, a.db, u.ID, connector, "cli", broker.RequestMeta{})
			switch {
			case errors.Is(err, broker.ErrLastWayIn):
				return fmt.Errorf("user %q: not unlinking %q: %w; set a password or link another connector first", username, connector, err)
			case errors.Is(err, storage.ErrNotFound):
				return fmt.Errorf("user %q has no identity at connector %q", username, connector)
			case err != nil:
				return fmt.Errorf("unlink user %q from %q: %w", username, connector, err)
			}
			if c.jsonOut {
				return c.printJSON(map[string]any{"username": u.Username, "connector": connector, "unlinked": n})
			}
			_, err = fmt.Fprintf(c.stderr, "%s: unlinked %d identity(ies) at %q\n", username, n, connector)
			return err
		},
	}
	cmd.Flags().StringVar(&username, "username", "", "user (required)")
	cmd.Flags().StringVar(&connector, "connector", "", "connector id (required)")
	return cmd
}
