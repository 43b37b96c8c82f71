package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/latchkeyid/latchkey/providers/local"
	"github.com/latchkeyid/latchkey/storage"
	"github.com/latchkeyid/latchkey/storage/sqlstore"
)

// FastHash are the argon2id parameters `load cheaphash` gives the fast
// users: the smallest the reference implementation allows in practice, so
// that a login through them costs everything but the password hash (about
// 0.1 ms is left of it; BenchmarkPasswordHash/bench measures it).
var FastHash = local.Params{Memory: 64, Iterations: 1, Parallelism: 1, SaltLength: 16, KeyLength: 32}

// cheapHash (load cheaphash sqlite|postgres DSN PASSWORD USER...) rehashes
// the password of users made with `latchkey users create` under FastHash,
// for the login_fasthash scenario. Run it before the server starts.
func cheapHash(args []string) error {
	if len(args) < 4 || (args[0] != sqlstore.DialectSQLite && args[0] != sqlstore.DialectPostgres) {
		return errors.New("usage: load cheaphash sqlite|postgres DSN PASSWORD USER...")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	db, err := sqlstore.Open(ctx, sqlstore.Options{Dialect: args[0], DSN: args[1]})
	if err != nil {
		return err
	}
	defer db.Close()
	h := local.NewHasher(FastHash, 1, 0, nil)
	for _, name := range args[3:] {
		u, err := db.GetUserByUsername(ctx, name)
		if err != nil {
			return fmt.Errorf("cheaphash: user %q: %w", name, err)
		}
		hash, err := h.Hash(ctx, args[2])
		if err != nil {
			return err
		}
		err = db.UpdateUser(ctx, u.ID, func(u storage.User) (storage.User, error) {
			u.PasswordHash = hash
			return u, nil
		})
		if err != nil {
			return fmt.Errorf("cheaphash: user %q: %w", name, err)
		}
	}
	return nil
}
