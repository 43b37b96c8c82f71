package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/latchkeyid/latchkey/storage"
)

// clientDoc is the part of a storage.Client kept in the data column. Its
// JSON names are the store's own, so a change of storage.Client's tags
// (which shape API output) cannot change what is stored. Slices, maps and
// pointers have no omitempty: nil and empty stay distinct.
type clientDoc struct {
	Name                    string         `json:"name,omitempty"`
	SecretHash              string         `json:"secret_hash,omitempty"`
	Public                  bool           `json:"public,omitempty"`
	RedirectURIs            []string       `json:"redirect_uris"`
	PostLogoutRedirectURIs  []string       `json:"post_logout_redirect_uris"`
	GrantTypes              []string       `json:"grant_types"`
	ResponseTypes           []string       `json:"response_types"`
	TokenEndpointAuthMethod string         `json:"token_endpoint_auth_method,omitempty"`
	ApplicationType         string         `json:"application_type,omitempty"`
	IDTokenSignedAlg        string         `json:"id_token_signed_response_alg,omitempty"`
	RequirePKCE             *bool          `json:"require_pkce"`
	FirstParty              *bool          `json:"first_party"`
	Audience                []string       `json:"audience"`
	AllowedConnectors       []string       `json:"allowed_connectors"`
	Scope                   string         `json:"scope,omitempty"`
	SessionBoundRefresh     bool           `json:"session_bound_refresh_tokens,omitempty"`
	BackchannelLogoutURI    string         `json:"backchannel_logout_uri,omitempty"`
	FrontchannelLogoutURI   string         `json:"frontchannel_logout_uri,omitempty"`
	JWKSURI                 string         `json:"jwks_uri,omitempty"`
	Extra                   map[string]any `json:"extra"`
}

func toClientDoc(c storage.Client) clientDoc {
	return clientDoc{
		Name:                    c.Name,
		SecretHash:              c.SecretHash,
		Public:                  c.Public,
		RedirectURIs:            c.RedirectURIs,
		PostLogoutRedirectURIs:  c.PostLogoutRedirectURIs,
		GrantTypes:              c.GrantTypes,
		ResponseTypes:           c.ResponseTypes,
		TokenEndpointAuthMethod: c.TokenEndpointAuthMethod,
		ApplicationType:         c.ApplicationType,
		IDTokenSignedAlg:        c.IDTokenSignedAlg,
		RequirePKCE:             c.RequirePKCE,
		FirstParty:              c.FirstParty,
		Audience:                c.Audience,
		AllowedConnectors:       c.AllowedConnectors,
		Scope:                   c.Scope,
		SessionBoundRefresh:     c.SessionBoundRefresh,
		BackchannelLogoutURI:    c.BackchannelLogoutURI,
		FrontchannelLogoutURI:   c.FrontchannelLogoutURI,
		JWKSURI:                 c.JWKSURI,
		Extra:                   c.Extra,
	}
}

func (d clientDoc) apply(c *storage.Client) {
	c.Name = d.Name
	c.SecretHash = d.SecretHash
	c.Public = d.Public
	c.RedirectURIs = d.RedirectURIs
	c.PostLogoutRedirectURIs = d.PostLogoutRedirectURIs
	c.GrantTypes = d.GrantTypes
	c.ResponseTypes = d.ResponseTypes
	c.TokenEndpointAuthMethod = d.TokenEndpointAuthMethod
	c.ApplicationType = d.ApplicationType
	c.IDTokenSignedAlg = d.IDTokenSignedAlg
	c.RequirePKCE = d.RequirePKCE
	c.FirstParty = d.FirstParty
	c.Audience = d.Audience
	c.AllowedConnectors = d.AllowedConnectors
	c.Scope = d.Scope
	c.SessionBoundRefresh = d.SessionBoundRefresh
	c.BackchannelLogoutURI = d.BackchannelLogoutURI
	c.FrontchannelLogoutURI = d.FrontchannelLogoutURI
	c.JWKSURI = d.JWKSURI
	c.Extra = d.Extra
}

const clientColumns = `id, data, jwks, disabled, config_managed, created_at, updated_at`

func scanClient(row interface{ Scan(...any) error }) (storage.Client, error) {
	var (
		c          storage.Client
		data, jwks []byte
	)
	if err := row.Scan(&c.ID, &data, &jwks, &c.Disabled, &c.ConfigManaged, timeDest{&c.CreatedAt}, timeDest{&c.UpdatedAt}); err != nil {
		return storage.Client{}, err
	}
	var d clientDoc
	if err := decodeDoc(data, &d); err != nil {
		return storage.Client{}, err
	}
	d.apply(&c)
	c.JWKS = rawValue(jwks)
	return c, nil
}

// clientArgs are the values of clientColumns in order.
func (s *Store) clientArgs(c storage.Client) ([]any, error) {
	data, err := docArg(toClientDoc(c))
	if err != nil {
		return nil, err
	}
	return []any{c.ID, data, rawArg(c.JWKS), c.Disabled, c.ConfigManaged, s.timeArg(c.CreatedAt), s.timeArg(c.UpdatedAt)}, nil
}

// CreateClient stores a new client; storage.ErrConflict if the id exists.
func (s *Store) CreateClient(ctx context.Context, c storage.Client) error {
	if c.ID == "" {
		return errors.New("create client: empty id")
	}
	s.stamp(&c.CreatedAt, &c.UpdatedAt)
	args, err := s.clientArgs(c)
	if err != nil {
		return fmt.Errorf("create client %q: %w", c.ID, err)
	}
	res, err := s.writer(ctx).ExecContext(ctx,
		`INSERT INTO clients (`+clientColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING`, args...)
	if err != nil {
		return fmt.Errorf("create client %q: %w", c.ID, err)
	}
	if n, err := affected(res); err != nil || n == 0 {
		return fmt.Errorf("create client %q: %w", c.ID, orConflict(err))
	}
	return nil
}

// GetClient returns the client; storage.ErrNotFound if there is none.
func (s *Store) GetClient(ctx context.Context, id string) (storage.Client, error) {
	c, err := s.getClient(ctx, s.reader(ctx), id, "")
	if err != nil {
		return storage.Client{}, fmt.Errorf("get client %q: %w", id, err)
	}
	return c, nil
}

func (s *Store) getClient(ctx context.Context, q querier, id, lock string) (storage.Client, error) {
	c, err := scanClient(q.QueryRowContext(ctx, `SELECT `+clientColumns+` FROM clients WHERE id = $1`+lock, id))
	if errors.Is(err, sql.ErrNoRows) {
		return storage.Client{}, storage.ErrNotFound
	}
	return c, err
}

// ListClients returns every client, ordered by id.
func (s *Store) ListClients(ctx context.Context) ([]storage.Client, error) {
	rows, err := s.reader(ctx).QueryContext(ctx, `SELECT `+clientColumns+` FROM clients ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("list clients: %w", err)
	}
	defer rows.Close()
	var out []storage.Client
	for rows.Next() {
		c, err := scanClient(rows)
		if err != nil {
			return nil, fmt.Errorf("list clients: %w", err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list clients: %w", err)
	}
	return out, nil
}

// UpdateClient applies fn to the client atomically.
func (s *Store) UpdateClient(ctx context.Context, id string, fn func(storage.Client) (storage.Client, error)) error {
	err := s.inTx(ctx, func(ctx context.Context, tx *Store) error {
		old, err := tx.getClient(ctx, tx.tx, id, tx.forUpdate())
		if err != nil {
			return err
		}
		c, err := fn(old)
		if err != nil {
			return err
		}
		if c.ID != id {
			return fmt.Errorf("the updater changed the id to %q", c.ID)
		}
		tx.touch(old.UpdatedAt, &c.UpdatedAt)
		c.CreatedAt = normTime(c.CreatedAt)
		args, err := tx.clientArgs(c)
		if err != nil {
			return err
		}
		_, err = tx.tx.ExecContext(ctx,
			`UPDATE clients SET data = $2, jwks = $3, disabled = $4, config_managed = $5, created_at = $6, updated_at = $7 WHERE id = $1`, args...)
		return err
	})
	if err != nil {
		return fmt.Errorf("update client %q: %w", id, err)
	}
	return nil
}

// DeleteClient removes the client; storage.ErrNotFound if there is none.
func (s *Store) DeleteClient(ctx context.Context, id string) error {
	if err := s.deleteByID(ctx, "clients", id); err != nil {
		return fmt.Errorf("delete client %q: %w", id, err)
	}
	return nil
}

// deleteByID deletes one row of table by id. table is a constant.
func (s *Store) deleteByID(ctx context.Context, table, id string) error {
	res, err := s.writer(ctx).ExecContext(ctx, `DELETE FROM `+table+` WHERE id = $1`, id)
	if err != nil {
		return err
	}
	n, err := affected(res)
	if err != nil {
		return err
	}
	if n == 0 {
		return storage.ErrNotFound
	}
	return nil
}

// orConflict is err, or storage.ErrConflict when an insert inserted nothing.
func orConflict(err error) error {
	if err != nil {
		return err
	}
	return storage.ErrConflict
}

// stamp fills zero creation and update times from the clock and
// normalises both as stored.
func (s *Store) stamp(created, updated *time.Time) {
	if created.IsZero() {
		*created = s.c.clock.Now()
	}
	if updated.IsZero() {
		*updated = *created
	}
	*created, *updated = normTime(*created), normTime(*updated)
}

// touch sets *updated to now when the updater left it as it was.
func (s *Store) touch(old time.Time, updated *time.Time) {
	if updated.Equal(old) {
		*updated = s.c.clock.Now()
	}
	*updated = normTime(*updated)
}
