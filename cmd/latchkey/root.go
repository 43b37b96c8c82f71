package main

import (
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"
)

// cli is what every command shares: the streams, the environment and the
// global flags. Commands that read data open the config and stores through
// it (app.go).
type cli struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	env            func(string) (string, bool)
	configPath     string
	jsonOut        bool
	// now is the clock for records the CLI creates.
	now func() time.Time
}

func newRoot(c *cli) *cobra.Command {
	root := &cobra.Command{
		Use:           "latchkey",
		Short:         "Latchkey, an identity broker and OpenID Connect provider",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	def := "latchkey.yaml"
	if v, ok := c.env("LATCHKEY_CONFIG"); ok && v != "" {
		def = v
	}
	root.PersistentFlags().StringVar(&c.configPath, "config", def, "config file (or $LATCHKEY_CONFIG)")
	root.PersistentFlags().BoolVar(&c.jsonOut, "json", false, "print one JSON object instead of text")
	root.AddCommand(
		newServeCmd(c),
		newMigrateCmd(c),
		newConfigCmd(c),
		newKeysCmd(c),
		newAuditCmd(c),
		newUsersCmd(c),
		newClientsCmd(c),
		newConnectorsCmd(c),
		newSessionsCmd(c),
		newMFACmd(c),
		newSAMLCmd(c),
		newAPIKeysCmd(c),
		newDemoAppCmd(c),
		newVersionCmd(c),
	)
	return root
}

func newVersionCmd(c *cli) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "print the version",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			if c.jsonOut {
				return c.printJSON(map[string]string{"version": version})
			}
			_, err := fmt.Fprintln(c.stdout, version)
			return err
		},
	}
}

// printJSON writes v as one JSON object on stdout.
func (c *cli) printJSON(v any) error {
	enc := json.NewEncoder(c.stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("write JSON: %w", err)
	}
	return nil
}
