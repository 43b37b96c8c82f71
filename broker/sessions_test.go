package broker_test

import (
	"context"
	"reflect"
	"sync"
	"testing"

	"github.com/latchkeyid/latchkey/broker"
	"github.com/latchkeyid/latchkey/session"
	"github.com/latchkeyid/latchkey/storage"
)

// upstreamRecorder is a connector's upstream-logout capability that
// records what it was asked to end.
type upstreamRecorder struct {
	mu    sync.Mutex
	calls []string
}

func (u *upstreamRecorder) EndUpstreamSession(_ context.Context, connectorID string, s session.Session) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.calls = append(u.calls, connectorID+" "+s.UserID+" "+s.SID)
	return nil
}

var _ broker.UpstreamLogout = (*upstreamRecorder)(nil)

// TestEndSessions: ending a user's sessions ends each once, calls the
// upstream hook for each, audits it, and leaves other users alone.
func TestEndSessions(t *testing.T) {
	forDialects(t, func(t *testing.T, dsn func(t testing.TB) string, dialect string) {
		up := &upstreamRecorder{}
		f := newFixture(t, dialect, dsn(t), func(o *broker.Options) { o.Upstream = up })
		f.addUser("alice")
		f.addUser("bob")
		f.addClient(storage.Client{ID: "app"}, "s3cret")
		ctx := t.Context()
		f.code("app", "alice", "openid")
		f.code("app", "alice", "openid")
		f.code("app", "bob", "openid")
		alice, err := f.b.Sessions(ctx, "u-alice")
		if err != nil || len(alice) != 2 {
			t.Fatalf("alice's sessions: %d, %v", len(alice), err)
		}

		ok, err := f.b.EndSession(ctx, alice[0].SID, broker.ReasonRevoked, "cli")
		if err != nil || !ok {
			t.Fatalf("EndSession = %v, %v", ok, err)
		}
		if ok, err := f.b.EndSession(ctx, alice[0].SID, broker.ReasonRevoked, "cli"); err != nil || ok {
			t.Fatalf("EndSession again = %v, %v; want false", ok, err)
		}
		n, err := f.b.EndSessions(ctx, "u-alice", broker.ReasonUserDisabled, "cli")
		if err != nil || n != 1 {
			t.Fatalf("EndSessions = %d, %v; want 1", n, err)
		}
		if left, _ := f.b.Sessions(ctx, "u-alice"); len(left) != 0 {
			t.Errorf("alice's sessions after EndSessions: %d", len(left))
		}
		if left, _ := f.b.Sessions(ctx, "u-bob"); len(left) != 1 {
			t.Errorf("bob's sessions: %d, want 1", len(left))
		}
		want := []string{"local u-alice " + alice[0].SID, "local u-alice " + alice[1].SID}
		if !reflect.DeepEqual(up.calls, want) {
			t.Errorf("upstream calls = %q, want %q", up.calls, want)
		}
		var got []string
		for _, e := range f.events("session.ended") {
			got = append(got, e.Actor+" "+e.UserID+" "+e.Data["reason"].(string)+" "+e.Data["sid"].(string))
		}
		if want := []string{"cli u-alice revoked " + alice[0].SID, "cli u-alice user_disabled " + alice[1].SID}; !reflect.DeepEqual(got, want) {
			t.Errorf("session.ended = %q, want %q", got, want)
		}
		f.noSecretsLogged()
	})
}
