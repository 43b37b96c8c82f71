package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"sync"
	"time"
)

// fileLocker is goose's SessionLocker for SQLite: an exclusive lock on a
// file next to the database, held while migrations run. The operating
// system drops it when the process dies, so a crash leaves no stale lock.
// The lock file stays (empty) after it is released.
type fileLocker struct {
	path string

	mu sync.Mutex
	f  *os.File
}

// lockPoll is how often a waiting migration retries the lock.
const lockPoll = 50 * time.Millisecond

func (l *fileLocker) SessionLock(ctx context.Context, _ *sql.Conn) error {
	f, err := os.OpenFile(l.path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("migration lock %s: %w", l.path, err)
	}
	for {
		ok, err := tryLockFile(f)
		if err != nil {
			_ = f.Close()
			return fmt.Errorf("migration lock %s: %w", l.path, err)
		}
		if ok {
			l.mu.Lock()
			l.f = f
			l.mu.Unlock()
			return nil
		}
		select {
		case <-ctx.Done():
			_ = f.Close()
			return fmt.Errorf("migration lock %s: waiting for another migration: %w", l.path, ctx.Err())
		case <-time.After(lockPoll):
		}
	}
}

func (l *fileLocker) SessionUnlock(context.Context, *sql.Conn) error {
	l.mu.Lock()
	f := l.f
	l.f = nil
	l.mu.Unlock()
	if f == nil {
		return nil
	}
	err := unlockFile(f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("migration unlock %s: %w", l.path, err)
	}
	return nil
}
