package conformance

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/latchkeyid/latchkey/storage"
)

// durTestRefreshTokens checks the refresh token methods: round trips,
// errors, the rotation compare-and-swap under concurrency, family
// revocation, cascades and transactions.
func durTestRefreshTokens(t *testing.T, open func(t *testing.T) storage.Durable) {
	t.Run("FixtureComplete", func(t *testing.T) { durAllSet(t, durFullRefresh("h")) })
	t.Run("RoundTrip", func(t *testing.T) { durTestRefreshRoundTrip(t, open) })
	t.Run("Errors", func(t *testing.T) { durTestRefreshErrors(t, open) })
	t.Run("Rotate", func(t *testing.T) { durTestRefreshRotate(t, open) })
	t.Run("RotateConcurrently", func(t *testing.T) { durTestRefreshRotateRace(t, open) })
	t.Run("RevokeFamily", func(t *testing.T) { durTestRefreshRevoke(t, open) })
	t.Run("RevokeBySID", func(t *testing.T) { durTestRefreshRevokeBySID(t, open) })
	t.Run("RevokeByUser", func(t *testing.T) { durTestRefreshRevokeByUser(t, open) })
	t.Run("RevokeBySIDWhileRotating", func(t *testing.T) { durTestRefreshRevokeBySIDRace(t, open) })
	t.Run("Cascade", func(t *testing.T) { durTestRefreshCascade(t, open) })
	t.Run("Prune", func(t *testing.T) { durTestRefreshPrune(t, open) })
	t.Run("Tx", func(t *testing.T) { durTestRefreshTx(t, open) })
}

// durRefreshOwners creates the user and client the fixtures name.
func durRefreshOwners(t *testing.T, s storage.Durable) {
	t.Helper()
	ctx := t.Context()
	durWantErr(t, "create user", s.CreateUser(ctx, durUser("ru1", "refresh-user")), nil)
	durWantErr(t, "create client", s.CreateClient(ctx, durClients.minimal("rc1")), nil)
}

// durFullRefresh sets every field.
func durFullRefresh(hash string) storage.RefreshToken {
	return storage.RefreshToken{
		Hash:       hash,
		FamilyID:   "fam-" + hash,
		ParentHash: "parent-of-" + hash,
		ClientID:   "rc1",
		UserID:     "ru1",
		Scopes:     []string{"openid", "offline_access", "email"},
		SID:        "sid-1",
		AuthTime:   durFixtureTime(1),
		AMR:        []string{"pwd", "otp", "mfa"},
		// Byte for byte, like every raw JSON the caller owns.
		Claims:          json.RawMessage(`{ "id_token": {"email": null, "x":"\u0041"} }`),
		IssuedAt:        durFixtureTime(2),
		FamilyCreatedAt: durFixtureTime(3),
		RotatedAt:       durFixtureTime(4),
		SuccessorHash:   "succ-of-" + hash,
		RevokedAt:       durFixtureTime(5),
	}
}

// durMinimalRefresh is a fresh, never rotated token with no optional
// fields: nil slices and raw JSON stay nil.
func durMinimalRefresh(hash, family string) storage.RefreshToken {
	return storage.RefreshToken{
		Hash: hash, FamilyID: family, ClientID: "rc1", UserID: "ru1",
		IssuedAt: durFixtureTime(10), FamilyCreatedAt: durFixtureTime(10),
	}
}

// durNormRefresh is t as the suite compares it.
func durNormRefresh(r storage.RefreshToken) storage.RefreshToken {
	r.AuthTime = durTime(r.AuthTime)
	r.IssuedAt = durTime(r.IssuedAt)
	r.FamilyCreatedAt = durTime(r.FamilyCreatedAt)
	r.RotatedAt = durTime(r.RotatedAt)
	r.RevokedAt = durTime(r.RevokedAt)
	return r
}

func durGetRefresh(t *testing.T, s storage.Durable, hash string) storage.RefreshToken {
	t.Helper()
	got, err := s.GetRefreshToken(t.Context(), hash)
	durWantErr(t, "get refresh token "+hash, err, nil)
	return durNormRefresh(got)
}

func durTestRefreshRoundTrip(t *testing.T, open func(t *testing.T) storage.Durable) {
	s := open(t)
	durRefreshOwners(t, s)
	for _, tc := range []struct {
		name string
		rec  storage.RefreshToken
	}{
		{"every field", durFullRefresh("h-full")},
		{"only required", durMinimalRefresh("h-min", "fam-min")},
		{"empty slices", func() storage.RefreshToken {
			r := durMinimalRefresh("h-empty", "fam-min")
			r.Scopes, r.AMR = []string{}, []string{}
			return r
		}()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			durWantErr(t, "create", s.CreateRefreshToken(t.Context(), tc.rec), nil)
			durEqual(t, "get after create", durGetRefresh(t, s, tc.rec.Hash), durNormRefresh(tc.rec))
		})
	}
}

func durTestRefreshErrors(t *testing.T, open func(t *testing.T) storage.Durable) {
	s := open(t)
	ctx := t.Context()
	durRefreshOwners(t, s)
	orig := durMinimalRefresh("h-1", "fam-1")
	durWantErr(t, "create", s.CreateRefreshToken(ctx, orig), nil)

	dup := durFullRefresh("h-1")
	durWantErrNaming(t, "create duplicate", s.CreateRefreshToken(ctx, dup), storage.ErrConflict, "h-1")
	durEqual(t, "token after a duplicate create", durGetRefresh(t, s, "h-1"), durNormRefresh(orig))

	_, err := s.GetRefreshToken(ctx, "h-missing")
	durWantErrNaming(t, "get missing", err, storage.ErrNotFound, "h-missing")

	noUser := durMinimalRefresh("h-nouser", "fam-2")
	noUser.UserID = "nobody"
	durWantErr(t, "create for a missing user", s.CreateRefreshToken(ctx, noUser), storage.ErrNotFound)
	noClient := durMinimalRefresh("h-noclient", "fam-2")
	noClient.ClientID = "nope"
	durWantErr(t, "create for a missing client", s.CreateRefreshToken(ctx, noClient), storage.ErrNotFound)
	for _, h := range []string{"h-nouser", "h-noclient"} {
		_, err := s.GetRefreshToken(ctx, h)
		durWantErr(t, "get "+h+" after a failed create", err, storage.ErrNotFound)
	}

	err = s.RotateRefreshToken(ctx, "h-missing", durFixtureTime(20), durMinimalRefresh("h-s", "fam-1"))
	durWantErrNaming(t, "rotate missing", err, storage.ErrNotFound, "h-missing")
	_, err = s.GetRefreshToken(ctx, "h-s")
	durWantErr(t, "successor of a missing token", err, storage.ErrNotFound)
}

func durTestRefreshRotate(t *testing.T, open func(t *testing.T) storage.Durable) {
	s := open(t)
	ctx := t.Context()
	durRefreshOwners(t, s)
	orig := durFullRefresh("h-1")
	orig.RotatedAt, orig.SuccessorHash, orig.RevokedAt = time.Time{}, "", time.Time{}
	durWantErr(t, "create", s.CreateRefreshToken(ctx, orig), nil)

	succ := orig
	succ.Hash, succ.ParentHash, succ.IssuedAt = "h-2", "h-1", durFixtureTime(30)
	durWantErr(t, "rotate", s.RotateRefreshToken(ctx, "h-1", durFixtureTime(30), succ), nil)
	want := orig
	want.RotatedAt, want.SuccessorHash = durFixtureTime(30), "h-2"
	durEqual(t, "rotated token", durGetRefresh(t, s, "h-1"), durNormRefresh(want))
	durEqual(t, "successor", durGetRefresh(t, s, "h-2"), durNormRefresh(succ))

	// A second rotation of the same token changes nothing.
	other := succ
	other.Hash = "h-other"
	err := s.RotateRefreshToken(ctx, "h-1", durFixtureTime(31), other)
	durWantErrNaming(t, "rotate again", err, storage.ErrConflict, "h-1")
	durEqual(t, "token after a second rotation", durGetRefresh(t, s, "h-1"), durNormRefresh(want))
	_, err = s.GetRefreshToken(ctx, "h-other")
	durWantErr(t, "successor of a refused rotation", err, storage.ErrNotFound)

	// The successor rotates in turn.
	third := succ
	third.Hash, third.ParentHash = "h-3", "h-2"
	durWantErr(t, "rotate successor", s.RotateRefreshToken(ctx, "h-2", durFixtureTime(32), third), nil)

	// A successor whose hash exists: nothing changes.
	durWantErr(t, "create h-4", s.CreateRefreshToken(ctx, durMinimalRefresh("h-4", "fam-other")), nil)
	clash := durMinimalRefresh("h-4", orig.FamilyID)
	err = s.RotateRefreshToken(ctx, "h-3", durFixtureTime(33), clash)
	durWantErr(t, "rotate onto an existing hash", err, storage.ErrConflict)
	durEqual(t, "token after a clashing rotation", durGetRefresh(t, s, "h-3"), durNormRefresh(third))
	durEqual(t, "existing token after a clashing rotation", durGetRefresh(t, s, "h-4"), durNormRefresh(durMinimalRefresh("h-4", "fam-other")))

	// A revoked token does not rotate.
	_, err = s.RevokeRefreshFamily(ctx, orig.FamilyID, durFixtureTime(34))
	durWantErr(t, "revoke", err, nil)
	err = s.RotateRefreshToken(ctx, "h-3", durFixtureTime(35), durMinimalRefresh("h-5", orig.FamilyID))
	durWantErr(t, "rotate a revoked token", err, storage.ErrConflict)
	_, err = s.GetRefreshToken(ctx, "h-5")
	durWantErr(t, "successor of a revoked token", err, storage.ErrNotFound)
}

// durTestRefreshRotateRace has durWorkers goroutines rotate one token at
// once, each with its own successor: exactly one wins, and only its
// successor exists.
func durTestRefreshRotateRace(t *testing.T, open func(t *testing.T) storage.Durable) {
	s := open(t)
	ctx := t.Context()
	durRefreshOwners(t, s)
	durWantErr(t, "create", s.CreateRefreshToken(ctx, durMinimalRefresh("h-0", "fam")), nil)

	start := make(chan struct{})
	errs := make([]error, durWorkers)
	var wg sync.WaitGroup
	for i := range durWorkers {
		wg.Go(func() {
			succ := durMinimalRefresh(fmt.Sprintf("succ-%02d", i), "fam")
			succ.ParentHash = "h-0"
			<-start
			errs[i] = s.RotateRefreshToken(ctx, "h-0", durFixtureTime(40), succ)
		})
	}
	close(start)
	wg.Wait()
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil:
			if winner >= 0 {
				t.Errorf("goroutines %d and %d both rotated the token", winner, i)
			}
			winner = i
		case errors.Is(err, storage.ErrConflict) && !errors.Is(err, storage.ErrNotFound):
		default:
			t.Errorf("goroutine %d: RotateRefreshToken: %v, want nil or ErrConflict", i, err)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	if winner < 0 {
		t.Fatalf("none of %d racing rotations succeeded", durWorkers)
	}
	got := durGetRefresh(t, s, "h-0")
	want := durMinimalRefresh("h-0", "fam")
	want.RotatedAt, want.SuccessorHash = durFixtureTime(40), fmt.Sprintf("succ-%02d", winner)
	durEqual(t, "token after the race", got, durNormRefresh(want))
	for i := range durWorkers {
		_, err := s.GetRefreshToken(ctx, fmt.Sprintf("succ-%02d", i))
		if i == winner {
			durWantErr(t, "winner's successor", err, nil)
		} else {
			durWantErr(t, fmt.Sprintf("loser %d's successor", i), err, storage.ErrNotFound)
		}
	}
}

func durTestRefreshRevoke(t *testing.T, open func(t *testing.T) storage.Durable) {
	s := open(t)
	ctx := t.Context()
	durRefreshOwners(t, s)
	a1, a2, a3 := durMinimalRefresh("a-1", "fam-a"), durMinimalRefresh("a-2", "fam-a"), durMinimalRefresh("a-3", "fam-a")
	a3.RevokedAt = durFixtureTime(1) // revoked earlier: keeps its time
	b1 := durMinimalRefresh("b-1", "fam-b")
	for _, r := range []storage.RefreshToken{a1, a2, a3, b1} {
		durWantErr(t, "create "+r.Hash, s.CreateRefreshToken(ctx, r), nil)
	}
	n, err := s.RevokeRefreshFamily(ctx, "fam-a", durFixtureTime(50))
	durWantErr(t, "revoke family", err, nil)
	if n != 2 {
		t.Fatalf("revoke family: %d revoked, want 2", n)
	}
	a1.RevokedAt, a2.RevokedAt = durFixtureTime(50), durFixtureTime(50)
	for _, r := range []storage.RefreshToken{a1, a2, a3, b1} {
		durEqual(t, "after revoking fam-a: "+r.Hash, durGetRefresh(t, s, r.Hash), durNormRefresh(r))
	}
	n, err = s.RevokeRefreshFamily(ctx, "fam-a", durFixtureTime(51))
	durWantErr(t, "revoke family again", err, nil)
	if n != 0 {
		t.Fatalf("revoke family again: %d revoked, want 0", n)
	}
	durEqual(t, "after revoking again", durGetRefresh(t, s, "a-1"), durNormRefresh(a1))
	n, err = s.RevokeRefreshFamily(ctx, "fam-unknown", durFixtureTime(52))
	durWantErr(t, "revoke unknown family", err, nil)
	if n != 0 {
		t.Fatalf("revoke unknown family: %d revoked, want 0", n)
	}
}

func durTestRefreshCascade(t *testing.T, open func(t *testing.T) storage.Durable) {
	s := open(t)
	ctx := t.Context()
	durRefreshOwners(t, s)
	durWantErr(t, "create user 2", s.CreateUser(ctx, durUser("ru2", "refresh-user-2")), nil)
	durWantErr(t, "create client 2", s.CreateClient(ctx, durClients.minimal("rc2")), nil)
	mk := func(hash, user, client string) storage.RefreshToken {
		r := durMinimalRefresh(hash, "fam-"+hash)
		r.UserID, r.ClientID = user, client
		durWantErr(t, "create "+hash, s.CreateRefreshToken(ctx, r), nil)
		return r
	}
	mk("u1c1", "ru1", "rc1")
	mk("u2c1", "ru2", "rc1")
	keep := mk("u2c2", "ru2", "rc2")
	durWantErr(t, "delete client rc1", s.DeleteClient(ctx, "rc1"), nil)
	for _, h := range []string{"u1c1", "u2c1"} {
		_, err := s.GetRefreshToken(ctx, h)
		durWantErr(t, "get "+h+" after its client was deleted", err, storage.ErrNotFound)
	}
	durEqual(t, "other client's token", durGetRefresh(t, s, "u2c2"), durNormRefresh(keep))
	durWantErr(t, "delete user ru2", s.DeleteUser(ctx, "ru2"), nil)
	_, err := s.GetRefreshToken(ctx, "u2c2")
	durWantErr(t, "get after its user was deleted", err, storage.ErrNotFound)
}

func durTestRefreshTx(t *testing.T, open func(t *testing.T) storage.Durable) {
	s := open(t)
	ctx := t.Context()
	durRefreshOwners(t, s)
	orig := durMinimalRefresh("h-1", "fam")
	durWantErr(t, "create", s.CreateRefreshToken(ctx, orig), nil)
	succ := durMinimalRefresh("h-2", "fam")
	err := s.Tx(ctx, func(ctx context.Context, tx storage.Durable) error {
		if err := tx.RotateRefreshToken(ctx, "h-1", durFixtureTime(60), succ); err != nil {
			return err
		}
		if _, err := tx.RevokeRefreshFamily(ctx, "fam", durFixtureTime(61)); err != nil {
			return err
		}
		return errDurBoom
	})
	if !errors.Is(err, errDurBoom) {
		t.Fatalf("Tx: %v, want errDurBoom", err)
	}
	durEqual(t, "token after a rolled back rotation", durGetRefresh(t, s, "h-1"), durNormRefresh(orig))
	_, err = s.GetRefreshToken(ctx, "h-2")
	durWantErr(t, "successor of a rolled back rotation", err, storage.ErrNotFound)

	err = s.Tx(ctx, func(ctx context.Context, tx storage.Durable) error {
		return tx.RotateRefreshToken(ctx, "h-1", durFixtureTime(62), succ)
	})
	durWantErr(t, "rotate in Tx", err, nil)
	want := orig
	want.RotatedAt, want.SuccessorHash = durFixtureTime(62), "h-2"
	durEqual(t, "token after a committed rotation", durGetRefresh(t, s, "h-1"), durNormRefresh(want))
	durEqual(t, "successor after a committed rotation", durGetRefresh(t, s, "h-2"), durNormRefresh(succ))
}

func durTestRefreshRevokeBySID(t *testing.T, open func(t *testing.T) storage.Durable) {
	s := open(t)
	ctx := t.Context()
	durRefreshOwners(t, s)
	durWantErr(t, "create client 2", s.CreateClient(ctx, durClients.minimal("rc2")), nil)
	mk := func(hash, family, client, sid string, revoked time.Time) storage.RefreshToken {
		r := durMinimalRefresh(hash, family)
		r.ClientID, r.SID, r.RevokedAt = client, sid, revoked
		durWantErr(t, "create "+hash, s.CreateRefreshToken(ctx, r), nil)
		return r
	}
	a1 := mk("a-1", "fam-a", "rc1", "sid-1", time.Time{})
	a2 := mk("a-2", "fam-a", "rc1", "sid-1", time.Time{})
	b1 := mk("b-1", "fam-b", "rc1", "sid-1", time.Time{})
	old := mk("c-1", "fam-c", "rc1", "sid-1", durFixtureTime(1)) // revoked earlier: keeps its time
	other := mk("d-1", "fam-d", "rc2", "sid-1", time.Time{})     // another client
	elsewhere := mk("e-1", "fam-e", "rc1", "sid-2", time.Time{}) // another session
	none := mk("f-1", "fam-f", "rc1", "", time.Time{})           // no session

	n, err := s.RevokeRefreshTokensBySID(ctx, "rc1", "sid-1", durFixtureTime(50))
	durWantErr(t, "revoke by sid", err, nil)
	if n != 3 {
		t.Fatalf("revoke by sid: %d revoked, want 3", n)
	}
	a1.RevokedAt, a2.RevokedAt, b1.RevokedAt = durFixtureTime(50), durFixtureTime(50), durFixtureTime(50)
	for _, r := range []storage.RefreshToken{a1, a2, b1, old, other, elsewhere, none} {
		durEqual(t, "after revoking sid-1 of rc1: "+r.Hash, durGetRefresh(t, s, r.Hash), durNormRefresh(r))
	}
	for _, tc := range []struct{ name, client, sid string }{
		{"again", "rc1", "sid-1"},
		{"empty sid", "rc1", ""},
		{"empty client", "", "sid-2"},
		{"unknown sid", "rc1", "sid-unknown"},
	} {
		n, err := s.RevokeRefreshTokensBySID(ctx, tc.client, tc.sid, durFixtureTime(51))
		durWantErr(t, "revoke by sid, "+tc.name, err, nil)
		if n != 0 {
			t.Fatalf("revoke by sid, %s: %d revoked, want 0", tc.name, n)
		}
	}
	for _, r := range []storage.RefreshToken{a1, other, elsewhere, none} {
		durEqual(t, "after the no-op revocations: "+r.Hash, durGetRefresh(t, s, r.Hash), durNormRefresh(r))
	}
}

// durTestRefreshRevokeBySIDRace revokes a session's tokens while another
// goroutine keeps rotating one of them: afterwards every token of the
// session is revoked (a successor inserted by a racing rotation too), and
// the rotations stop with ErrConflict.
func durTestRefreshRevokeBySIDRace(t *testing.T, open func(t *testing.T) storage.Durable) {
	s := open(t)
	ctx := t.Context()
	durRefreshOwners(t, s)
	first := durMinimalRefresh("r-000", "fam-r")
	first.SID = "sid-r"
	durWantErr(t, "create", s.CreateRefreshToken(ctx, first), nil)

	var (
		mu      sync.Mutex
		hashes  = []string{first.Hash}
		rotated = make(chan struct{}, 1)
		wg      sync.WaitGroup
		rotErr  error
	)
	wg.Go(func() {
		cur := first.Hash
		for i := 1; i < 10000; i++ {
			succ := durMinimalRefresh(fmt.Sprintf("r-%03d", i), "fam-r")
			succ.SID, succ.ParentHash = "sid-r", cur
			err := s.RotateRefreshToken(ctx, cur, durFixtureTime(70), succ)
			if errors.Is(err, storage.ErrConflict) {
				return
			}
			if err != nil {
				rotErr = err
				return
			}
			mu.Lock()
			hashes = append(hashes, succ.Hash)
			mu.Unlock()
			cur = succ.Hash
			if i == 3 {
				rotated <- struct{}{}
			}
		}
		rotErr = errors.New("the rotations never stopped")
	})
	<-rotated
	_, err := s.RevokeRefreshTokensBySID(ctx, "rc1", "sid-r", durFixtureTime(71))
	durWantErr(t, "revoke by sid while rotating", err, nil)
	wg.Wait()
	if rotErr != nil {
		t.Fatalf("rotating: %v", rotErr)
	}
	for _, h := range hashes {
		if got := durGetRefresh(t, s, h); got.RevokedAt.IsZero() {
			t.Errorf("token %s of the session is not revoked", h)
		}
	}
}

// durTestRefreshPrune: a family past its absolute end or idle since its
// newest token goes whole; a live family keeps its rotated rows too.
func durTestRefreshPrune(t *testing.T, open func(t *testing.T) storage.Durable) {
	s := open(t)
	ctx := t.Context()
	durRefreshOwners(t, s)
	tok := func(hash, family string, created, issued int) storage.RefreshToken {
		r := durMinimalRefresh(hash, family)
		r.FamilyCreatedAt, r.IssuedAt = durFixtureTime(created), durFixtureTime(issued)
		return r
	}
	for _, r := range []storage.RefreshToken{
		tok("old-1", "old", 1, 1), tok("old-2", "old", 1, 40), // absolute end passed
		tok("idle-1", "idle", 20, 20), tok("idle-2", "idle", 20, 25), // newest issued at 25
		tok("live-1", "live", 20, 20), tok("live-2", "live", 20, 35), // newest issued at 35
		tok("edge-1", "edge", 10, 30), // created exactly at the cutoff: kept
	} {
		durWantErr(t, "create "+r.Hash, s.CreateRefreshToken(ctx, r), nil)
	}
	n, err := s.PruneRefreshTokens(ctx, durFixtureTime(10), durFixtureTime(30))
	durWantErr(t, "prune", err, nil)
	if n != 4 {
		t.Errorf("PruneRefreshTokens deleted %d rows, want 4", n)
	}
	for hash, want := range map[string]error{
		"old-1": storage.ErrNotFound, "old-2": storage.ErrNotFound,
		"idle-1": storage.ErrNotFound, "idle-2": storage.ErrNotFound,
		"live-1": nil, "live-2": nil, "edge-1": nil,
	} {
		_, err := s.GetRefreshToken(ctx, hash)
		durWantErr(t, "get "+hash+" after prune", err, want)
	}
	n, err = s.PruneRefreshTokens(ctx, durFixtureTime(10), durFixtureTime(30))
	durWantErr(t, "prune again", err, nil)
	if n != 0 {
		t.Errorf("second PruneRefreshTokens deleted %d rows, want 0", n)
	}
}

// durTestRefreshRevokeByUser revokes the tokens of one client issued to
// one user, and no other (a consent revoked on the account page).
func durTestRefreshRevokeByUser(t *testing.T, open func(t *testing.T) storage.Durable) {
	s := open(t)
	ctx := t.Context()
	durRefreshOwners(t, s)
	durWantErr(t, "create client 2", s.CreateClient(ctx, durClients.minimal("rc2")), nil)
	durWantErr(t, "create user 2", s.CreateUser(ctx, durUser("ru2", "refresh-user-2")), nil)
	mk := func(hash, client, user string, revoked time.Time) storage.RefreshToken {
		r := durMinimalRefresh(hash, "fam-"+hash)
		r.ClientID, r.UserID, r.RevokedAt = client, user, revoked
		durWantErr(t, "create "+hash, s.CreateRefreshToken(ctx, r), nil)
		return r
	}
	a := mk("u-a", "rc1", "ru1", time.Time{})
	b := mk("u-b", "rc1", "ru1", time.Time{})
	old := mk("u-c", "rc1", "ru1", durFixtureTime(1)) // revoked earlier: keeps its time
	other := mk("u-d", "rc2", "ru1", time.Time{})     // another client
	someone := mk("u-e", "rc1", "ru2", time.Time{})   // another user
	n, err := s.RevokeUserRefreshTokens(ctx, "rc1", "ru1", durFixtureTime(60))
	durWantErr(t, "revoke by user", err, nil)
	if n != 2 {
		t.Fatalf("revoke by user: %d revoked, want 2", n)
	}
	a.RevokedAt, b.RevokedAt = durFixtureTime(60), durFixtureTime(60)
	for _, r := range []storage.RefreshToken{a, b, old, other, someone} {
		durEqual(t, "after revoking rc1 of ru1: "+r.Hash, durGetRefresh(t, s, r.Hash), durNormRefresh(r))
	}
	for _, tc := range []struct{ name, client, user string }{{"again", "rc1", "ru1"}, {"empty user", "rc1", ""}, {"empty client", "", "ru1"}} {
		n, err := s.RevokeUserRefreshTokens(ctx, tc.client, tc.user, durFixtureTime(61))
		durWantErr(t, "revoke by user, "+tc.name, err, nil)
		if n != 0 {
			t.Fatalf("revoke by user, %s: %d revoked, want 0", tc.name, n)
		}
	}
}
