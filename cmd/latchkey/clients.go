package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/latchkeyid/latchkey/internal/config"
	"github.com/latchkeyid/latchkey/storage"
)

// descriptiveMetadata are RFC 7591 / OpenID registration fields Latchkey
// keeps (in Client.Extra) and shows but does not act on.
var descriptiveMetadata = map[string]bool{
	"client_uri": true, "logo_uri": true, "contacts": true, "tos_uri": true, "policy_uri": true,
	"software_id": true, "software_version": true, "default_max_age": true, "require_auth_time": true,
	"initiate_login_uri": true, "sector_identifier_uri": true, "subject_type": true,
	"token_endpoint_auth_signing_alg": true, "userinfo_signed_response_alg": true,
	"default_acr_values": true, "request_uris": true,
	// Always met: logout tokens carry sid and sub, front-channel logout
	// URLs get iss and sid (docs/sessions.md).
	"backchannel_logout_session_required": true, "frontchannel_logout_session_required": true,
}

// generateSecret returns a 256-bit client secret, base64url.
func generateSecret() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("random secret: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

type clientFlags struct {
	id, name, metadata   string
	redirectURIs, grants []string
	public, secretStdin  bool
}

// buildClient merges --metadata and the flags into one registration
// document, validated exactly as a client in the config file.
func (c *cli) buildClient(cfg *config.Config, f clientFlags) (storage.Client, string, bool, error) {
	doc := map[string]any{}
	if f.metadata != "" {
		raw, err := os.ReadFile(f.metadata)
		if err != nil {
			return storage.Client{}, "", false, fmt.Errorf("--metadata: %w", err)
		}
		if err := json.Unmarshal(raw, &doc); err != nil {
			return storage.Client{}, "", false, fmt.Errorf("--metadata %s: not a JSON object: %w", f.metadata, err)
		}
	}
	if f.id != "" {
		doc["client_id"] = f.id
	}
	if f.name != "" {
		doc["client_name"] = f.name
	}
	if len(f.redirectURIs) > 0 {
		doc["redirect_uris"] = f.redirectURIs
	}
	if len(f.grants) > 0 {
		doc["grant_types"] = f.grants
	}
	if f.public {
		doc["public"] = true
	}
	if _, ok := doc["client_secret"]; ok {
		return storage.Client{}, "", false, errors.New("--metadata: client_secret is not accepted in a file; use --secret-stdin or let it be generated")
	}
	public, _ := doc["public"].(bool)
	method, _ := doc["token_endpoint_auth_method"].(string)
	needsSecret := !public && method != "none" && method != "private_key_jwt"
	var secret string
	generated := false
	if needsSecret {
		var err error
		if f.secretStdin {
			secret, err = c.readSecretStdin("client secret")
		} else {
			secret, err = generateSecret()
			generated = true
		}
		if err != nil {
			return storage.Client{}, "", false, err
		}
		doc["client_secret"] = secret
	} else if f.secretStdin {
		return storage.Client{}, "", false, errors.New("--secret-stdin: this client does not use a secret")
	}
	cl, err := clientFromDoc(cfg, doc, c.now())
	if err != nil {
		return storage.Client{}, "", false, fmt.Errorf("client is not valid:\n%w", err)
	}
	return cl, secret, generated, nil
}

// clientFromDoc validates a registration document (doc is consumed)
// exactly as a client in the config file; descriptive RFC 7591 metadata
// goes to Extra. The CLI and the admin API share it. The error is a
// *config.Problems for an invalid document.
func clientFromDoc(cfg *config.Config, doc map[string]any, now time.Time) (storage.Client, error) {
	extra := map[string]any{}
	for k, v := range doc {
		if descriptiveMetadata[k] {
			extra[k] = v
			delete(doc, k)
		}
	}
	raw, err := json.Marshal(doc)
	if err != nil {
		return storage.Client{}, fmt.Errorf("encode client metadata: %w", err)
	}
	cc, err := config.ParseClient(raw, cfg)
	if err != nil {
		return storage.Client{}, err
	}
	cl := cc.ToStorage(now)
	cl.ConfigManaged = false
	if len(extra) > 0 {
		cl.Extra = extra
	}
	return cl, nil
}

func newClientsCmd(c *cli) *cobra.Command {
	cmd := &cobra.Command{Use: "clients", Short: "OAuth/OIDC clients (relying parties)"}
	var f clientFlags
	create := &cobra.Command{
		Use:   "create",
		Short: "register a client; a confidential client's secret is generated and printed unless --secret-stdin",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if f.id == "" {
				return errors.New("--id is required")
			}
			a, err := c.openApp(ctx, schemaRequire, false)
			if err != nil {
				return err
			}
			defer a.close()
			cl, secret, generated, err := c.buildClient(a.cfg, f)
			if err != nil {
				return err
			}
			err = a.db.Tx(ctx, func(ctx context.Context, tx storage.Durable) error {
				if err := tx.CreateClient(ctx, cl); err != nil {
					return err
				}
				return tx.AppendEvent(ctx, storage.Event{Type: "client.created", Actor: "cli", ClientID: cl.ID})
			})
			if errors.Is(err, storage.ErrConflict) {
				return fmt.Errorf("client %q already exists", cl.ID)
			}
			if err != nil {
				return fmt.Errorf("create client %q: %w", cl.ID, err)
			}
			kind := "confidential"
			if cl.Public {
				kind = "public"
			}
			return c.printCreated(map[string]any{"client_id": cl.ID}, "client_secret", secret, generated,
				fmt.Sprintf("created %s client %q", kind, cl.ID))
		},
	}
	fl := create.Flags()
	fl.StringVar(&f.id, "id", "", "client_id (required)")
	fl.StringVar(&f.name, "name", "", "client_name shown on the consent page")
	fl.StringArrayVar(&f.redirectURIs, "redirect-uri", nil, "redirect URI (repeatable)")
	fl.BoolVar(&f.public, "public", false, "a public client (no secret; PKCE required)")
	fl.BoolVar(&f.secretStdin, "secret-stdin", false, "read the client secret from stdin instead of generating one")
	fl.StringSliceVar(&f.grants, "grant-types", nil, "grant types, comma-separated (default authorization_code,refresh_token)")
	fl.StringVar(&f.metadata, "metadata", "", "RFC 7591 client metadata JSON file; flags override its fields")

	list := &cobra.Command{
		Use:   "list",
		Short: "list clients",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			a, err := c.openApp(ctx, schemaRequire, false)
			if err != nil {
				return err
			}
			defer a.close()
			clients, err := a.db.ListClients(ctx)
			if err != nil {
				return fmt.Errorf("list clients: %w", err)
			}
			if c.jsonOut {
				for i := range clients {
					clients[i].SecretHash = ""
				}
				if clients == nil {
					clients = []storage.Client{}
				}
				return c.printJSON(map[string]any{"clients": clients})
			}
			w := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "CLIENT_ID\tTYPE\tSOURCE\tREDIRECT_URIS\tGRANT_TYPES")
			for _, cl := range clients {
				kind, src := "confidential", "storage"
				if cl.Public {
					kind = "public"
				}
				if cl.ConfigManaged {
					src = "config"
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", cl.ID, kind, src, dash(strings.Join(cl.RedirectURIs, " ")), dash(strings.Join(cl.GrantTypes, ",")))
			}
			return w.Flush()
		},
	}

	del := newDeleteCmd(c, "client", "client_id (required)", func(ctx context.Context, tx storage.Durable, id string) error {
		cl, err := tx.GetClient(ctx, id)
		if err != nil {
			return err
		}
		if cl.ConfigManaged {
			return storage.ErrReadOnly
		}
		if err := tx.DeleteClient(ctx, id); err != nil {
			return err
		}
		return tx.AppendEvent(ctx, storage.Event{Type: "client.deleted", Actor: "cli", ClientID: id})
	})
	cmd.AddCommand(create, list, del)
	return cmd
}

// newDeleteCmd is `delete --id ID` for a kind of record the config file
// may manage: del runs in one transaction and returns storage.ErrReadOnly
// for a config-managed record.
func newDeleteCmd(c *cli, kind, idHelp string, del func(ctx context.Context, tx storage.Durable, id string) error) *cobra.Command {
	var id string
	cmd := &cobra.Command{
		Use:   "delete",
		Short: "delete a " + kind + " (not one managed by the config file)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if id == "" {
				return errors.New("--id is required")
			}
			ctx := cmd.Context()
			a, err := c.openApp(ctx, schemaRequire, false)
			if err != nil {
				return err
			}
			defer a.close()
			err = a.db.Tx(ctx, func(ctx context.Context, tx storage.Durable) error { return del(ctx, tx, id) })
			switch {
			case errors.Is(err, storage.ErrNotFound):
				return fmt.Errorf("no %s %q", kind, id)
			case errors.Is(err, storage.ErrReadOnly):
				return fmt.Errorf("%s %q is managed by the config file: remove it there", kind, id)
			case err != nil:
				return fmt.Errorf("delete %s %q: %w", kind, id, err)
			}
			_, err = fmt.Fprintf(c.stderr, "deleted %s %q\n", kind, id)
			return err
		},
	}
	cmd.Flags().StringVar(&id, "id", "", idHelp)
	return cmd
}
