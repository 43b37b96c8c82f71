package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/latchkeyid/latchkey/internal/config"
	"github.com/latchkeyid/latchkey/internal/httpclient"
	"github.com/latchkeyid/latchkey/providers"
	"github.com/latchkeyid/latchkey/providers/saml"
	"github.com/latchkeyid/latchkey/storage"
)

// newSAMLCmd is `latchkey saml`: tools for saml connectors.
func newSAMLCmd(c *cli) *cobra.Command {
	cmd := &cobra.Command{Use: "saml", Short: "SAML 2.0 connectors"}
	var connector string
	md := &cobra.Command{
		Use:   "sp-metadata [CONNECTOR]",
		Short: "print a saml connector's SP metadata XML (to register Latchkey at the IdP)",
		Long: "Prints the service provider metadata of the saml connector named by CONNECTOR or --connector:\n" +
			"entity ID, ACS and SLO URLs under the issuer, the signing and encryption certificates.\n" +
			"It is the document served at {issuer}/saml/{connector}/metadata and needs no network.",
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id := connector
			switch {
			case len(args) == 1 && id != "" && args[0] != id:
				return fmt.Errorf("connector named twice: %q and --connector %q", args[0], id)
			case len(args) == 1:
				id = args[0]
			case id == "":
				return errors.New("name the connector: latchkey saml sp-metadata CONNECTOR (or --connector ID)")
			}
			out, err := c.samlSPMetadata(cmd.Context(), id)
			if err != nil {
				return err
			}
			if c.jsonOut {
				return c.printJSON(map[string]any{"connector": id, "metadata": string(out)})
			}
			_, err = c.stdout.Write(out)
			return err
		},
	}
	md.Flags().StringVar(&connector, "connector", "", "the saml connector's id")
	cmd.AddCommand(md)
	return cmd
}

// samlSPMetadata opens the saml connector id (from the config file, else
// from the store) and returns its SP metadata.
func (c *cli) samlSPMetadata(ctx context.Context, id string) ([]byte, error) {
	cfg, err := c.loadConfig()
	if err != nil {
		return nil, err
	}
	var sc storage.Connector
	found := false
	for _, cc := range cfg.Connectors {
		if cc.ID == id {
			sc, found = cc.ToStorage(time.Now()), true
		}
	}
	raw := sc.Config
	if !found {
		a, err := c.openApp(ctx, schemaRequire, false)
		if err != nil {
			return nil, err
		}
		defer a.close()
		if sc, err = a.db.GetConnector(ctx, id); errors.Is(err, storage.ErrNotFound) {
			return nil, fmt.Errorf("no connector %q in the config file or the store", id)
		} else if err != nil {
			return nil, fmt.Errorf("load connector %q: %w", id, err)
		}
		if raw, err = unsealConnectorSecrets(a.keyring, sc); err != nil {
			return nil, err
		}
	}
	if sc.Type != saml.TypeName {
		return nil, fmt.Errorf("connector %q is of type %q, not saml", id, sc.Type)
	}
	return samlMetadataOf(ctx, cfg, sc, raw)
}

// samlMetadataOf opens a saml connector only to print its metadata: no
// replay cache is needed (nothing is verified) and no request is made.
func samlMetadataOf(ctx context.Context, cfg *config.Config, sc storage.Connector, raw []byte) ([]byte, error) {
	typ := saml.Type{BaseURL: cfg.Issuer, Replay: noReplay{}}
	conn, err := typ.Open(ctx, providers.Info{ID: sc.ID, Name: sc.Name}, raw, providers.Deps{HTTPClient: httpclient.New(httpclient.Options{})})
	if err != nil {
		return nil, fmt.Errorf("open connector %q: %w", sc.ID, err)
	}
	return conn.(*saml.Connector).SPMetadata()
}

// noReplay refuses every assertion: `saml sp-metadata` verifies none.
type noReplay struct{}

func (noReplay) Seen(context.Context, string, time.Time) (bool, error) {
	return false, errors.New("no replay cache in this command")
}
