package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

var benchDBName = regexp.MustCompile(`^lk_bench_[0-9a-f]{12}$`)

// pgdb makes (create URL: prints the new database's URL) or drops (drop
// URL-of-a-database-it-made) a throwaway PostgreSQL database for a bench
// run, on the server of LATCHKEY_TEST_POSTGRES. drop refuses names it did
// not make.
func pgdb(args []string) error {
	if len(args) != 2 || (args[0] != "create" && args[0] != "drop") {
		return errors.New("usage: load pgdb create|drop URL")
	}
	u, err := url.Parse(args[1])
	if err != nil || u.Scheme == "" {
		return errors.New("pgdb: the URL is not a postgres:// URL")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	name := strings.TrimPrefix(u.Path, "/")
	admin := *u
	if args[0] == "drop" {
		if !benchDBName.MatchString(name) {
			return fmt.Errorf("pgdb drop: %q is not a database pgdb create made", name)
		}
		admin.Path = "/postgres"
	}
	c, err := pgx.Connect(ctx, admin.String())
	if err != nil {
		return fmt.Errorf("pgdb: connect to %s: %w", admin.Redacted(), err)
	}
	defer c.Close(context.Background())
	if args[0] == "drop" {
		_, err := c.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
		return err
	}
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	name = "lk_bench_" + hex.EncodeToString(b)
	if _, err := c.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		return fmt.Errorf("pgdb create: %w", err)
	}
	u.Path = "/" + name
	fmt.Println(u.String())
	return nil
}
