package broker

import (
	"context"
	"errors"
	"slices"

	"github.com/latchkeyid/latchkey/session"
)

// BrowserSessions are the SSO session cookies one browser presented. A
// browser may hold several accounts (prompt=select_account): Active is
// the session that signs it in now; Others are the cookie values of the
// other accounts it signed in with, newest first. web keeps them in two
// cookies; the broker says when either changes (Cookies).
type BrowserSessions struct {
	Active string
	Others []string
}

// MaxOtherAccounts bounds how many other accounts one browser keeps; when
// one more is added the oldest is dropped from the browser (its session
// lives on until it expires or is revoked).
const MaxOtherAccounts = 4

// Cookies are the browser cookies an answer changes.
type Cookies struct {
	// Binding, when set, is a new binding cookie value to set.
	Binding string
	// SessionCookie, when set, is a new session cookie value to set.
	SessionCookie string
	// ClearSession removes the session cookie: its session ended.
	ClearSession bool
	// SetOthers replaces the browser's list of other accounts with
	// Others (empty clears it).
	SetOthers bool
	Others    []string
}

// account is one live session the browser holds.
type account struct {
	cookie string
	sess   session.Session
	active bool
}

// normalize drops duplicates, the active cookie and oversized values from
// Others.
func (bs BrowserSessions) normalize() BrowserSessions {
	var others []string
	for _, c := range bs.Others {
		if c == "" || c == bs.Active || len(c) > 128 || slices.Contains(others, c) {
			continue
		}
		others = append(others, c)
	}
	if len(others) > MaxOtherAccounts {
		others = others[:MaxOtherAccounts]
	}
	return BrowserSessions{Active: bs.Active, Others: others}
}

// accounts returns the live sessions the browser holds, the active one
// first. Sessions of the same user appear once (the first found).
func (b *Broker) accounts(ctx context.Context, bs BrowserSessions) ([]account, error) {
	bs = bs.normalize()
	var out []account
	add := func(cookie string, active bool) error {
		if cookie == "" {
			return nil
		}
		s, err := b.sessions.Get(ctx, cookie)
		if errors.Is(err, session.ErrNoSession) {
			return nil
		}
		if err != nil {
			return err
		}
		for _, a := range out {
			if a.sess.UserID == s.UserID {
				return nil
			}
		}
		out = append(out, account{cookie: cookie, sess: s, active: active})
		return nil
	}
	if err := add(bs.Active, true); err != nil {
		return nil, err
	}
	for _, c := range bs.Others {
		if err := add(c, false); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// hasOtherAccounts reports whether the browser holds a live session other
// than the active one.
func (b *Broker) hasOtherAccounts(ctx context.Context, bs BrowserSessions) (bool, error) {
	if len(bs.Others) == 0 {
		return false, nil
	}
	accts, err := b.accounts(ctx, bs)
	if err != nil {
		return false, err
	}
	for _, a := range accts {
		if !a.active {
			return true, nil
		}
	}
	return false, nil
}

// withOthers returns others with cookie first and without drop, bounded
// to MaxOtherAccounts.
func withOthers(others []string, first string, drop ...string) []string {
	out := []string{}
	if first != "" {
		out = append(out, first)
	}
	for _, c := range others {
		if c != first && !slices.Contains(drop, c) && !slices.Contains(out, c) {
			out = append(out, c)
		}
	}
	if len(out) > MaxOtherAccounts {
		out = out[:MaxOtherAccounts]
	}
	return out
}
