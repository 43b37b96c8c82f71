package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/latchkeyid/latchkey/broker"
	"github.com/latchkeyid/latchkey/providers/local"
	"github.com/latchkeyid/latchkey/storage"
)

// readSecretStdin reads one line (a password or secret) from stdin.
func (c *cli) readSecretStdin(what string) (string, error) {
	line, err := bufio.NewReader(io.LimitReader(c.stdin, 4096)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read %s from stdin: %w", what, err)
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", fmt.Errorf("read %s from stdin: empty", what)
	}
	return line, nil
}

// newUserID returns a random, opaque user id (the stable `sub`).
func newUserID() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("random user id: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// generatePassword returns a random 128-bit password, base64url.
func generatePassword() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("random password: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

func validUsername(u string) error {
	switch {
	case u == "":
		return errors.New("--username is required")
	case len(u) > local.MaxUsernameLength:
		return fmt.Errorf("--username: at most %d bytes", local.MaxUsernameLength)
	case strings.TrimSpace(u) != u || strings.ContainsAny(u, "\t\r\n"):
		return errors.New("--username: no surrounding spaces or control characters")
	}
	return nil
}

// createUser makes a local user with a hashed password and writes the
// audit event in the same transaction.
func createUser(ctx context.Context, db storage.Durable, h *local.Hasher, u storage.User, password, actor string) (storage.User, error) {
	hash, err := h.Hash(ctx, password)
	if err != nil {
		return storage.User{}, fmt.Errorf("hash password: %w", err)
	}
	if u.ID == "" {
		if u.ID, err = newUserID(); err != nil {
			return storage.User{}, err
		}
	}
	u.PasswordHash = hash
	err = db.Tx(ctx, func(ctx context.Context, tx storage.Durable) error {
		if err := tx.CreateUser(ctx, u); err != nil {
			return err
		}
		return tx.AppendEvent(ctx, storage.Event{Type: "user.created", Actor: actor, UserID: u.ID, Data: map[string]any{"username": u.Username}})
	})
	if errors.Is(err, storage.ErrConflict) {
		return storage.User{}, fmt.Errorf("user %q already exists", u.Username)
	}
	if err != nil {
		return storage.User{}, fmt.Errorf("create user %q: %w", u.Username, err)
	}
	return u, nil
}

func newUsersCmd(c *cli) *cobra.Command {
	cmd := &cobra.Command{Use: "users", Short: "local users"}

	var (
		username, email, name string
		emailVerified         bool
		groups                []string
		passwordStdin         bool
	)
	create := &cobra.Command{
		Use:   "create",
		Short: "create a local user (without --password-stdin a random password is generated and printed)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := validUsername(username); err != nil {
				return err
			}
			var password string
			var err error
			generated := !passwordStdin
			if passwordStdin {
				password, err = c.readSecretStdin("password")
			} else {
				password, err = generatePassword()
			}
			if err != nil {
				return err
			}
			if len(password) > local.MaxPasswordLength {
				return fmt.Errorf("password: at most %d bytes", local.MaxPasswordLength)
			}
			ctx := cmd.Context()
			// A verification mail (notify.email) needs the ephemeral store
			// that keeps the link.
			a, err := c.openApp(ctx, schemaRequire, email != "" && !emailVerified)
			if err != nil {
				return err
			}
			defer a.close()
			u, err := createUser(ctx, a.db, local.NewHasher(local.DefaultParams, 0, 0, nil),
				storage.User{Username: username, Email: email, EmailVerified: emailVerified, Name: name, Groups: groups}, password, "cli")
			if err != nil {
				return err
			}
			if u.Email != "" && !u.EmailVerified {
				if err := a.sendVerification(ctx, u.ID); err != nil { // notify.go
					fmt.Fprintf(cmd.ErrOrStderr(), "user created, but the verification e-mail was not sent: %v\n", err)
				}
			}
			return c.printCreated(map[string]any{"id": u.ID, "username": u.Username}, "password", password, generated,
				fmt.Sprintf("created user %q (id %s)", u.Username, u.ID))
		},
	}
	f := create.Flags()
	f.StringVar(&username, "username", "", "username (required)")
	f.StringVar(&email, "email", "", "email address")
	f.BoolVar(&emailVerified, "email-verified", false, "mark the email address verified")
	f.StringVar(&name, "name", "", "display name")
	f.StringArrayVar(&groups, "group", nil, "group (repeatable)")
	f.BoolVar(&passwordStdin, "password-stdin", false, "read the password from the first line of stdin")

	list := &cobra.Command{
		Use:   "list",
		Short: "list users",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			a, err := c.openApp(ctx, schemaRequire, false)
			if err != nil {
				return err
			}
			defer a.close()
			users, err := a.db.ListUsers(ctx)
			if err != nil {
				return fmt.Errorf("list users: %w", err)
			}
			if c.jsonOut {
				type row struct {
					ID            string    `json:"id"`
					Username      string    `json:"username"`
					Email         string    `json:"email,omitempty"`
					EmailVerified bool      `json:"email_verified"`
					Groups        []string  `json:"groups,omitempty"`
					Disabled      bool      `json:"disabled"`
					CreatedAt     time.Time `json:"created_at"`
				}
				rows := []row{}
				for _, u := range users {
					rows = append(rows, row{u.ID, u.Username, u.Email, u.EmailVerified, u.Groups, u.Disabled, u.CreatedAt})
				}
				return c.printJSON(map[string]any{"users": rows})
			}
			w := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "USERNAME\tID\tEMAIL\tVERIFIED\tGROUPS\tDISABLED\tCREATED")
			for _, u := range users {
				fmt.Fprintf(w, "%s\t%s\t%s\t%t\t%s\t%t\t%s\n", dash(u.Username), u.ID, dash(u.Email), u.EmailVerified,
					dash(strings.Join(u.Groups, ",")), u.Disabled, fmtTime(u.CreatedAt))
			}
			return w.Flush()
		},
	}

	var spUser string
	setPassword := &cobra.Command{
		Use:   "set-password",
		Short: "set a user's password (read from stdin)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			password, err := c.readSecretStdin("password")
			if err != nil {
				return err
			}
			if len(password) > local.MaxPasswordLength {
				return fmt.Errorf("password: at most %d bytes", local.MaxPasswordLength)
			}
			return c.changeUser(cmd.Context(), spUser, "user.password_changed", func(ctx context.Context, u storage.User) (storage.User, error) {
				hash, err := local.NewHasher(local.DefaultParams, 0, 0, nil).Hash(ctx, password)
				if err != nil {
					return u, fmt.Errorf("hash password: %w", err)
				}
				u.PasswordHash = hash
				return u, nil
			})
		},
	}
	setPassword.Flags().StringVar(&spUser, "username", "", "user (required)")
	setPassword.Flags().Bool("password-stdin", true, "read the password from stdin (always)")

	var disUser string
	disable := &cobra.Command{
		Use:   "disable",
		Short: "disable a user: sign-in, sessions, userinfo and refresh stop working at once",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if err := c.changeUser(ctx, disUser, "user.disabled", func(_ context.Context, u storage.User) (storage.User, error) {
				u.Disabled = true
				return u, nil
			}); err != nil {
				return err
			}
			return c.endUserSessions(ctx, disUser)
		},
	}
	disable.Flags().StringVar(&disUser, "username", "", "user (required)")

	var delUser string
	del := &cobra.Command{
		Use:   "delete",
		Short: "delete a user and what belongs to them",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if delUser == "" {
				return errors.New("--username is required")
			}
			ctx := cmd.Context()
			a, err := c.openApp(ctx, schemaRequire, false)
			if err != nil {
				return err
			}
			defer a.close()
			err = a.db.Tx(ctx, func(ctx context.Context, tx storage.Durable) error {
				u, err := tx.GetUserByUsername(ctx, delUser)
				if err != nil {
					return err
				}
				if err := tx.DeleteUser(ctx, u.ID); err != nil {
					return err
				}
				return tx.AppendEvent(ctx, storage.Event{Type: "user.deleted", Actor: "cli", UserID: u.ID, Data: map[string]any{"username": u.Username}})
			})
			if errors.Is(err, storage.ErrNotFound) {
				return fmt.Errorf("no user %q", delUser)
			}
			if err != nil {
				return fmt.Errorf("delete user %q: %w", delUser, err)
			}
			_, err = fmt.Fprintf(c.stderr, "deleted user %q\n", delUser)
			return err
		},
	}
	del.Flags().StringVar(&delUser, "username", "", "user (required)")

	cmd.AddCommand(create, list, setPassword, disable, del, newUsersUnlinkCmd(c))
	return cmd
}

// changeUser applies fn to the user named username, with an audit event in
// the same transaction.
func (c *cli) changeUser(ctx context.Context, username, event string, fn func(context.Context, storage.User) (storage.User, error)) error {
	if username == "" {
		return errors.New("--username is required")
	}
	a, err := c.openApp(ctx, schemaRequire, false)
	if err != nil {
		return err
	}
	defer a.close()
	u, err := a.db.GetUserByUsername(ctx, username)
	if errors.Is(err, storage.ErrNotFound) {
		return fmt.Errorf("no user %q", username)
	}
	if err != nil {
		return fmt.Errorf("load user %q: %w", username, err)
	}
	next, err := fn(ctx, u)
	if err != nil {
		return err
	}
	err = a.db.Tx(ctx, func(ctx context.Context, tx storage.Durable) error {
		if err := tx.UpdateUser(ctx, u.ID, func(cur storage.User) (storage.User, error) {
			cur.PasswordHash, cur.Disabled = next.PasswordHash, next.Disabled
			return cur, nil
		}); err != nil {
			return err
		}
		return tx.AppendEvent(ctx, storage.Event{Type: event, Actor: "cli", UserID: u.ID, Data: map[string]any{"username": u.Username}})
	})
	if err != nil {
		return fmt.Errorf("update user %q: %w", username, err)
	}
	_, err = fmt.Fprintf(c.stderr, "%s: %s\n", username, strings.TrimPrefix(event, "user."))
	return err
}

// endUserSessions ends every SSO session of a user who was just disabled
// (the broker notifies the clients and revokes session-bound refresh
// tokens). The user is disabled already: sign-in, userinfo and refresh
// refuse them whatever happens here.
func (c *cli) endUserSessions(ctx context.Context, username string) error {
	a, err := c.openApp(ctx, schemaRequire, true)
	if err != nil {
		return fmt.Errorf("%s is disabled, but their sessions were not ended: %w", username, err)
	}
	defer a.close()
	u, err := a.userByName(ctx, username)
	if err != nil {
		return err
	}
	brk, err := a.sessionBroker(ctx)
	if err != nil {
		return fmt.Errorf("%s is disabled, but their sessions were not ended: %w", username, err)
	}
	n, err := brk.EndSessions(ctx, u.ID, broker.ReasonUserDisabled, "cli")
	if err != nil {
		return fmt.Errorf("%s is disabled, but ending their sessions failed: %w", username, err)
	}
	if err := a.waitLogouts(ctx, brk); err != nil {
		return err
	}
	_, err = fmt.Fprintf(c.stderr, "%s: ended %d session(s)\n", username, n)
	return err
}

// printCreated prints what a create command made. A generated secret goes
// to stdout alone (one line) and everything else to stderr; with --json,
// one JSON object holds both (CONTRACTS.md).
func (c *cli) printCreated(fields map[string]any, secretName, secret string, generated bool, summary string) error {
	if c.jsonOut {
		if generated {
			fields[secretName] = secret
		}
		return c.printJSON(fields)
	}
	if _, err := fmt.Fprintln(c.stderr, summary); err != nil {
		return err
	}
	if generated {
		_, err := fmt.Fprintln(c.stdout, secret)
		return err
	}
	return nil
}
