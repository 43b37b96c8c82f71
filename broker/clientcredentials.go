package broker

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/latchkeyid/latchkey/broker/oauth2"
	"github.com/latchkeyid/latchkey/broker/token"
	"github.com/latchkeyid/latchkey/storage"
)

// clientCredentialScopes are the scopes a client may ask for with the
// client_credentials grant: those it registered in `scope`, except the
// OpenID Connect scopes, which describe a user (there is none). A client
// that registered no scope gets tokens without scope.
func clientCredentialScopes(c storage.Client) []string {
	var out []string
	for _, s := range strings.Fields(c.Scope) {
		if !slices.Contains(SupportedScopes, s) {
			out = append(out, s)
		}
	}
	return out
}

// clientCredentialsGrant handles grant_type=client_credentials (RFC 6749
// §4.4) for a confidential client: an access token whose sub is the
// client id, no ID token, no refresh token. Omitting scope asks for every
// scope the client may have.
func (b *Broker) clientCredentialsGrant(ctx context.Context, client storage.Client, method string, form url.Values, meta RequestMeta) (*oauth2.TokenResponse, *oauth2.Error) {
	if client.Public || method == AuthMethodNone {
		return nil, oauth2.ErrUnauthorizedClient("client_credentials needs a confidential client", nil)
	}
	allowed := clientCredentialScopes(client)
	scopes := allowed
	if param := form.Get("scope"); param != "" {
		requested, err := oauth2.ParseScope(param)
		if err != nil {
			if e, ok := oauth2.As(err); ok {
				return nil, e
			}
			return nil, oauth2.ErrInvalidScope("invalid scope", err)
		}
		for _, s := range requested {
			if !slices.Contains(allowed, s) {
				return nil, oauth2.ErrInvalidScope(fmt.Sprintf("scope %s is not allowed for client_credentials", quoteScope(s)), nil)
			}
		}
		scopes = requested
	}
	g := token.Grant{ClientID: client.ID, Audience: client.Audience, Scopes: scopes}
	at, jti, exp, err := b.tokens.AccessToken(ctx, token.Subject{UserID: client.ID}, g)
	if err != nil {
		return nil, oauth2.ErrServerError("", fmt.Errorf("sign access token: %w", err))
	}
	b.auditBatched(ctx, storage.Event{Type: "token.issued", Actor: "client:" + client.ID, ClientID: client.ID,
		IP: meta.IP, UserAgent: meta.UserAgent, RequestID: meta.RequestID,
		Data: map[string]any{"grant_type": GrantTypeClientCredentials, "scope": strings.Join(scopes, " "), "jti": jti}})
	return &oauth2.TokenResponse{
		AccessToken: at, TokenType: oauth2.TokenTypeBearer, ExpiresIn: expiresIn(exp, b.now()), Scope: strings.Join(scopes, " "),
	}, nil
}
