package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/latchkeyid/latchkey/internal/config"
	"github.com/latchkeyid/latchkey/storage"
)

// maxConnectorFileBytes bounds the --file a connector is read from.
const maxConnectorFileBytes = 1 << 20

// readConnectorFile parses and validates a connector document (YAML or
// JSON: id, type, name, config) exactly as a `connectors:` entry of the
// config file, every problem listed with its path.
func readConnectorFile(path string) (config.ConnectorConfig, error) {
	if path == "" {
		return config.ConnectorConfig{}, errors.New("--file is required")
	}
	f, err := os.Open(path)
	if err != nil {
		return config.ConnectorConfig{}, fmt.Errorf("--file: %w", err)
	}
	defer f.Close()
	raw, err := io.ReadAll(io.LimitReader(f, maxConnectorFileBytes+1))
	if err != nil {
		return config.ConnectorConfig{}, fmt.Errorf("--file %s: %w", path, err)
	}
	if len(raw) > maxConnectorFileBytes {
		return config.ConnectorConfig{}, fmt.Errorf("--file %s: larger than %d bytes", path, maxConnectorFileBytes)
	}
	cc, err := config.ParseConnector(raw, config.WithConnectorTypes(connectorValidators(connectorRegistry())))
	if err != nil {
		return config.ConnectorConfig{}, fmt.Errorf("connector in %s is not valid:\n%w", path, err)
	}
	return cc, nil
}

// inConfigFile reports whether the config file names connector id: such a
// connector is managed by the file even before serve has synced it.
func inConfigFile(cfg *config.Config, id string) bool {
	return slices.ContainsFunc(cfg.Connectors, func(c config.ConnectorConfig) bool { return c.ID == id })
}

// connectorRow is what list shows of a connector: never its config, which
// holds (sealed) secrets.
type connectorRow struct {
	ID        string `json:"id"`
	Type      string `json:"type"`
	Name      string `json:"name"`
	Source    string `json:"source"`
	CreatedAt string `json:"created_at"`
	UpdatedAt string `json:"updated_at"`
}

func newConnectorsCmd(c *cli) *cobra.Command {
	cmd := &cobra.Command{Use: "connectors", Short: "upstream identity connectors"}

	// save validates --file, seals its secrets as config sync does and
	// stores it in one transaction with its audit event.
	save := func(ctx context.Context, file string, update bool) error {
		cc, err := readConnectorFile(file)
		if err != nil {
			return err
		}
		a, err := c.openApp(ctx, schemaRequire, false)
		if err != nil {
			return err
		}
		defer a.close()
		if inConfigFile(a.cfg, cc.ID) {
			return fmt.Errorf("connector %q is managed by the config file: change it there", cc.ID)
		}
		conn := cc.ToStorage(c.now())
		conn.ConfigManaged = false
		conn, err = sealConnectorSecrets(a.keyring, conn)
		if err != nil {
			return err
		}
		op, verb, event := "create", "created", "connector.created"
		if update {
			op, verb, event = "update", "updated", "connector.updated"
		}
		err = a.db.Tx(ctx, func(ctx context.Context, tx storage.Durable) error {
			if update {
				err := tx.UpdateConnector(ctx, conn.ID, func(old storage.Connector) (storage.Connector, error) {
					if old.ConfigManaged {
						return old, storage.ErrReadOnly
					}
					conn.CreatedAt = old.CreatedAt
					return conn, nil
				})
				if err != nil {
					return err
				}
			} else if err := tx.CreateConnector(ctx, conn); err != nil {
				return err
			}
			return tx.AppendEvent(ctx, storage.Event{Type: event, Actor: "cli", ConnectorID: conn.ID})
		})
		switch {
		case errors.Is(err, storage.ErrConflict):
			return fmt.Errorf("connector %q already exists: use `latchkey connectors update`", conn.ID)
		case errors.Is(err, storage.ErrNotFound):
			return fmt.Errorf("no connector %q: use `latchkey connectors create`", conn.ID)
		case errors.Is(err, storage.ErrReadOnly):
			return fmt.Errorf("connector %q is managed by the config file: change it there", conn.ID)
		case err != nil:
			return fmt.Errorf("%s connector %q: %w", op, conn.ID, err)
		}
		if c.jsonOut {
			return c.printJSON(map[string]any{"id": conn.ID, "type": conn.Type, "name": conn.Name, verb: true})
		}
		_, err = fmt.Fprintf(c.stderr, "%s %s connector %q\n", verb, conn.Type, conn.ID)
		return err
	}

	var createFile, updateFile string
	create := &cobra.Command{
		Use:   "create",
		Short: "add a connector from a YAML or JSON file (id, type, name, config)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return save(cmd.Context(), createFile, false)
		},
	}
	create.Flags().StringVar(&createFile, "file", "", "connector file, the shape of a `connectors:` entry (required)")
	update := &cobra.Command{
		Use:   "update",
		Short: "replace a connector (not one managed by the config file) from a YAML or JSON file",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return save(cmd.Context(), updateFile, true)
		},
	}
	update.Flags().StringVar(&updateFile, "file", "", "connector file, the shape of a `connectors:` entry (required)")

	list := &cobra.Command{
		Use:   "list",
		Short: "list connectors (never their secrets)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			a, err := c.openApp(ctx, schemaRequire, false)
			if err != nil {
				return err
			}
			defer a.close()
			conns, err := a.db.ListConnectors(ctx)
			if err != nil {
				return fmt.Errorf("list connectors: %w", err)
			}
			rows := make([]connectorRow, 0, len(conns))
			for _, cn := range conns {
				src := "storage"
				if cn.ConfigManaged {
					src = "config"
				}
				rows = append(rows, connectorRow{ID: cn.ID, Type: cn.Type, Name: cn.Name, Source: src,
					CreatedAt: fmtTime(cn.CreatedAt), UpdatedAt: fmtTime(cn.UpdatedAt)})
			}
			if c.jsonOut {
				return c.printJSON(map[string]any{"connectors": rows})
			}
			w := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "ID\tTYPE\tNAME\tSOURCE\tUPDATED")
			for _, r := range rows {
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", r.ID, r.Type, dash(r.Name), r.Source, r.UpdatedAt)
			}
			return w.Flush()
		},
	}

	del := newDeleteCmd(c, "connector", "connector id (required)", func(ctx context.Context, tx storage.Durable, id string) error {
		cn, err := tx.GetConnector(ctx, id)
		if err != nil {
			return err
		}
		if cn.ConfigManaged {
			return storage.ErrReadOnly
		}
		if err := tx.DeleteConnector(ctx, id); err != nil {
			return err
		}
		return tx.AppendEvent(ctx, storage.Event{Type: "connector.deleted", Actor: "cli", ConnectorID: id})
	})
	cmd.AddCommand(create, update, list, del)
	return cmd
}
