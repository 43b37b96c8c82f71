package storage

import "errors"

var (
	// ErrNotFound: the record or key does not exist (or has expired).
	ErrNotFound = errors.New("storage: not found")
	// ErrConflict: a record with that key already exists, or a
	// compare-and-swap found a value other than the expected one.
	ErrConflict = errors.New("storage: conflict")
	// ErrReadOnly: the record is managed by the config file and cannot be
	// changed through the API or CLI.
	ErrReadOnly = errors.New("storage: record is managed by the config file")
)
