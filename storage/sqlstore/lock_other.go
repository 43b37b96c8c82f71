//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly || windows)

package sqlstore

import "os"

// tryLockFile has no cross-process lock on this platform: migrations of
// one process are still serialised by the single writer connection.
func tryLockFile(*os.File) (bool, error) { return true, nil }

func unlockFile(*os.File) error { return nil }
