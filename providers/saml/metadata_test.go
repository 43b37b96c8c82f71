package saml_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/beevik/etree"

	"github.com/latchkeyid/latchkey/providers"
	"github.com/latchkeyid/latchkey/providers/saml"
)

// metadataServer serves IdP metadata on 127.0.0.1 and counts requests.
type metadataServer struct {
	mu     sync.Mutex
	body   string
	status int
	hits   int
	srv    *httptest.Server
}

func newMetadataServer(t *testing.T, body string) *metadataServer {
	m := &metadataServer{body: body, status: http.StatusOK}
	m.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m.mu.Lock()
		defer m.mu.Unlock()
		m.hits++
		w.Header().Set("Content-Type", "application/samlmetadata+xml")
		w.WriteHeader(m.status)
		_, _ = w.Write([]byte(m.body))
	}))
	t.Cleanup(m.srv.Close)
	return m
}

func (m *metadataServer) set(status int, body string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.status, m.body = status, body
}

func (m *metadataServer) count() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.hits
}

func signedMetadata(t *testing.T, p *testIdP) string { return signedMetadataTB(t, p) }

func signedMetadataTB(t testing.TB, p *testIdP) string {
	t.Helper()
	el, err := p.idp.SignedMetadata()
	if err != nil {
		t.Fatal(err)
	}
	doc := etree.NewDocument()
	doc.SetRoot(el)
	s, err := doc.WriteToString()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestMetadataURL(t *testing.T) {
	ctx := context.Background()
	start := func(e *env) error {
		_, err := e.conn.StartLogin(ctx, saml.LoginRequest{RelayState: testRelay})
		return err
	}
	t.Run("fetched lazily, cached, refreshed, kept when the refresh fails", func(t *testing.T) {
		var srv *metadataServer
		e := newEnv(t, func(c *saml.Config) {
			srv = newMetadataServer(t, newTestIdP(t, testKeys(t)["idp"], testIdPURL).metadataXML(t))
			c.IdPMetadata, c.IdPMetadataURL, c.IdPMetadataRefresh = "", srv.srv.URL+"/metadata", "1h"
		})
		if srv.count() != 0 {
			t.Fatal("Open fetched the metadata")
		}
		for i, step := range []struct {
			advance time.Duration
			status  int
			hits    int
		}{
			{0, 200, 1}, {30 * time.Minute, 200, 1}, {31 * time.Minute, 200, 2},
			// A 500 is retried (3 attempts); the old metadata is kept and
			// the next try is a minute later.
			{61 * time.Minute, 500, 5}, {30 * time.Second, 500, 5}, {31 * time.Second, 200, 6}, {59 * time.Minute, 200, 6},
		} {
			e.clock.Advance(step.advance)
			srv.set(step.status, srv.body)
			if err := start(e); err != nil {
				t.Fatalf("step %d: %v", i, err)
			}
			if srv.count() != step.hits {
				t.Fatalf("step %d: %d fetches, want %d", i, srv.count(), step.hits)
			}
		}
	})
	t.Run("one fetch for concurrent first logins", func(t *testing.T) {
		var srv *metadataServer
		e := newEnv(t, func(c *saml.Config) {
			srv = newMetadataServer(t, newTestIdP(t, testKeys(t)["idp"], testIdPURL).metadataXML(t))
			c.IdPMetadata, c.IdPMetadataURL = "", srv.srv.URL+"/metadata"
		})
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs <- start(e)
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		if srv.count() != 1 {
			t.Fatalf("%d fetches, want 1", srv.count())
		}
	})
	t.Run("unavailable on first use", func(t *testing.T) {
		var srv *metadataServer
		e := newEnv(t, func(c *saml.Config) {
			srv = newMetadataServer(t, "")
			srv.set(http.StatusServiceUnavailable, "down")
			c.IdPMetadata, c.IdPMetadataURL = "", srv.srv.URL+"/metadata"
		})
		err := start(e)
		var ue *providers.UnavailableError
		if !errors.Is(err, providers.ErrUpstreamUnavailable) || !errors.As(err, &ue) || ue.Connector != "Corp SAML" {
			t.Fatalf("err = %v, want UnavailableError for Corp SAML", err)
		}
		_, err = e.acs(b64(e.idp.responseXML(t, respOpts{})))
		if !errors.Is(err, providers.ErrUpstreamUnavailable) {
			t.Fatalf("HandleACS: %v", err)
		}
	})
	for _, tc := range []struct {
		name, pin string
		signed    bool
		want      string
	}{
		{name: "pinned and signed", pin: "idp", signed: true},
		{name: "pinned, signed by another key", pin: "metadata", signed: true,
			want: "Corp SAML is unavailable: IdP metadata: signature does not verify with idpMetadataCertificates: cannot validate signature on EntityDescriptor: Could not verify certificate against trusted certs"},
		{name: "pinned, unsigned", pin: "idp",
			want: "Corp SAML is unavailable: IdP metadata: signature does not verify with idpMetadataCertificates: metadata is not signed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := testKeys(t)
			e := newEnv(t, func(c *saml.Config) {
				p := newTestIdP(t, k["idp"], testIdPURL)
				body := p.metadataXML(t)
				if tc.signed {
					body = signedMetadata(t, p)
				}
				srv := newMetadataServer(t, body)
				c.IdPMetadata, c.IdPMetadataURL = "", srv.srv.URL+"/metadata"
				c.IdPMetadataCertificates = []string{k[tc.pin].certPEM}
			})
			want := tc.want
			if want == "" {
				want = "<nil>"
			}
			if err := start(e); errString(err) != want {
				t.Fatalf("err = %v\nwant %s", err, want)
			}
		})
	}
}

// TestSigningKeyRollover: when the IdP signs with a certificate its
// cached metadata does not list, the metadata is fetched again (at most
// every 5 minutes) and the response checked against the new one.
func TestSigningKeyRollover(t *testing.T) {
	k := testKeys(t)
	oldIdP := newTestIdP(t, k["idp"], testIdPURL)
	newIdP := newTestIdP(t, k["metadata"], testIdPURL) // same entity, new key
	srv := newMetadataServer(t, oldIdP.metadataXML(t))
	e := newEnv(t, func(c *saml.Config) { c.IdPMetadata, c.IdPMetadataURL = "", srv.srv.URL+"/metadata" })
	if _, err := e.acs(b64(oldIdP.responseXML(t, respOpts{assertionID: "id-a1"}))); err != nil {
		t.Fatalf("old key: %v", err)
	}
	srv.set(http.StatusOK, newIdP.metadataXML(t))

	// Within 5 minutes of the fetch, a response by an unknown key does
	// not make us fetch again.
	_, err := e.acs(b64(newIdP.responseXML(t, respOpts{assertionID: "id-a2"})))
	if ae := acsErr(t, err); ae.Reason != saml.ReasonSignature || srv.count() != 1 {
		t.Fatalf("err = %v, fetches = %d", err, srv.count())
	}
	e.clock.Advance(6 * time.Minute)
	e.idp = newIdP
	if _, err := e.conn.HandleACS(ctx(), saml.ACSRequest{
		SAMLResponse: b64(newIdP.responseXML(t, respOpts{assertionID: "id-a3", now: t0.Add(6 * time.Minute)})),
		RelayState:   testRelay, ExpectedRelayState: testRelay, RequestIDs: []string{testReqID},
	}); err != nil {
		t.Fatalf("new key after the rollover: %v", err)
	}
	if srv.count() != 2 {
		t.Fatalf("%d fetches, want 2", srv.count())
	}
	// A forged response right after does not fetch again.
	other := k["other"]
	_, err = e.conn.HandleACS(ctx(), saml.ACSRequest{
		SAMLResponse: b64(newIdP.responseXML(t, respOpts{assertionID: "id-a4", signer: &other, now: t0.Add(6 * time.Minute)})),
		RelayState:   testRelay, ExpectedRelayState: testRelay, RequestIDs: []string{testReqID},
	})
	if ae := acsErr(t, err); ae.Reason != saml.ReasonSignature || srv.count() != 2 {
		t.Fatalf("forged: err = %v, fetches = %d", err, srv.count())
	}
}

func ctx() context.Context { return context.Background() }
