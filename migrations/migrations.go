package migrations

import (
	"embed"
	"io/fs"
)

//go:embed sqlite/*.sql postgres/*.sql
var files embed.FS

// SQLite holds the SQLite migrations at its root.
var SQLite fs.FS = mustSub("sqlite")

// Postgres holds the PostgreSQL migrations at its root.
var Postgres fs.FS = mustSub("postgres")

func mustSub(dir string) fs.FS {
	sub, err := fs.Sub(files, dir)
	if err != nil {
		// fs.Sub fails only for an invalid path, which is a constant here.
		panic("migrations: " + err.Error())
	}
	return sub
}
