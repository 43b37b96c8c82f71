// Package ldap is the connector for an LDAP directory (OpenLDAP, Active
// Directory, 389 Directory Server, ...): a providers.PasswordConnector
// that checks the username and password the broker collected in its own
// form (github.com/go-ldap/ldap/v3 speaks the protocol).
//
// Flow. Open validates the config (Type.Validate: every problem with its
// path), reads the rootCA file and does no network I/O. Login then
//
//  1. refuses, without contacting the directory, an empty username, an
//     empty password (a simple bind with a DN and no password is an
//     "unauthenticated bind" that many servers answer with success),
//     input over MaxUsernameLength/MaxPasswordLength, and a username that
//     is not UTF-8 text;
//  2. searches userSearch.baseDN with userSearch.filter, whose
//     {username} is replaced by the entered username escaped for LDAP
//     filters (RFC 4515, ldap.EscapeFilter: "*", "(", ")", "\", NUL and
//     every non-ASCII byte become \xx), on a pooled connection bound as
//     the service account (bindDN; anonymous without one). Exactly one
//     entry must match: none or several is ErrInvalidCredentials;
//  3. binds as the entry's DN with the entered password on a connection
//     of its own, closed right after, so pooled connections stay bound
//     as the service account. Result 49 (invalidCredentials: wrong
//     password; in Active Directory also a disabled, locked or expired
//     account) is ErrInvalidCredentials;
//  4. searches groupSearch.baseDN with groupSearch.filter ({dn}: the
//     user's DN, {username}: the user's usernameAttr value, both escaped)
//     on a pooled connection and names each group by groupSearch.nameAttr;
//  5. builds the Identity: Subject from userSearch.idAttr (entryUUID by
//     default, objectGUID for Active Directory, the DN when the entry has
//     none), Username, Email and Name from their attributes,
//     EmailVerified from the config's emailVerified (default true: the
//     directory is the authority; false when there is no email), Groups,
//     AMR ["pwd"] (the directory checked a password; RFC 8176), no
//     ConnectorData (there is nothing to refresh);
//  6. refuses a user in none of allowedGroups (*providers.DeniedError),
//     then applies the CEL claimMapping and allow/deny rules
//     (providers/mapping) over the claims: each attribute read from the
//     entry as a list of strings, dn and groups.
//
// Connections. Service-account connections live in a pool of at most
// maxConnections, reused across logins and closed after maxIdleTime
// idle; a pooled connection found dead (the server restarted) is
// replaced and the operation tried once more. The password binds use
// short-lived connections, at most maxConnections at a time. A caller
// that finds no connection free within requestTimeout gets
// providers.ErrBusy. Every connection is ldaps:// or StartTLS, verified
// against rootCA/rootCAData or the system roots (plain ldap:// only with
// insecureNoTLS; certificate checks cannot be turned off). Connecting
// and the TLS handshake are bounded by connectTimeout, each operation by
// requestTimeout (a deadline on the socket, also moved to now when the
// request's context ends), so a directory that is down or hangs yields a
// *providers.UnavailableError naming the connector within those bounds.
//
// Directory addresses come from the admin's config only and are usually
// private: they are dialled directly, not through internal/httpclient
// (which is for HTTP and refuses private addresses).
//
// Never logged: passwords (the user's, bindPassword) and the entered
// username (people type their password into the username field); a
// found entry is named by its DN.
package ldap
