package saml_test

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"sync"
	"testing"
	"time"

	"github.com/beevik/etree"
	crewjam "github.com/crewjam/saml"
	dsig "github.com/russellhaering/goxmldsig"

	"github.com/latchkeyid/latchkey/internal/clock"
	"github.com/latchkeyid/latchkey/providers"
	"github.com/latchkeyid/latchkey/providers/providertest"
	"github.com/latchkeyid/latchkey/providers/saml"
	"github.com/latchkeyid/latchkey/providers/saml/samltest"
)

// t0 is the fake time of the in-process tests.
var t0 = time.Date(2031, 3, 4, 10, 0, 0, 0, time.UTC)

const (
	testBase   = "https://login.example.com"
	testConnID = "corp"
	testIdPURL = "https://idp.example.net"
	testACS    = testBase + "/saml/corp/acs"
	testEntity = testBase + "/saml/corp/metadata"
	testReqID  = "id-request-0001"
	testRelay  = "relay-state-0001"
)

type keyPair struct {
	key     *rsa.PrivateKey
	cert    *x509.Certificate
	keyPEM  string
	certPEM string
}

func (k keyPair) export() samltest.KeyPair {
	return samltest.KeyPair{Key: k.key, Cert: k.cert, KeyPEM: k.keyPEM, CertPEM: k.certPEM}
}

var (
	keysOnce sync.Once
	keys     map[string]keyPair
)

// testKeys returns RSA key pairs made once per test binary: "idp", "other"
// (an attacker's IdP key), "sp", "spenc", "metadata". Their certificates
// are valid around t0 and now.
func testKeys(t testing.TB) map[string]keyPair {
	t.Helper()
	keysOnce.Do(func() {
		keys = map[string]keyPair{}
		for _, name := range []string{"idp", "other", "sp", "spenc", "metadata"} {
			keys[name] = newKeyPair(name)
		}
	})
	return keys
}

func newKeyPair(cn string) keyPair {
	kp := samltest.NewKeyPair(cn, t0)
	return keyPair{key: kp.Key, cert: kp.Cert, keyPEM: kp.KeyPEM, certPEM: kp.CertPEM}
}

// testIdP is samltest's in-process IdP answering testReqID at t0 for the
// SP at testEntity / testACS.
type testIdP struct {
	*samltest.IdP
	idp *crewjam.IdentityProvider
	kp  keyPair
}

func newTestIdP(t testing.TB, kp keyPair, base string) *testIdP {
	t.Helper()
	p := samltest.NewIdP(t, kp.export(), base, samltest.SP{EntityID: testEntity, ACS: testACS}, t0)
	p.RequestID = testReqID
	return &testIdP{IdP: p, idp: p.IdP, kp: kp}
}

func (p *testIdP) entityID() string { return p.EntityID() }

func (p *testIdP) metadataXML(t testing.TB) string { return p.MetadataXML(t) }

// respOpts are samltest.RespOpts; the zero value (after defaults) is a
// valid response to testReqID signed on the Response and the Assertion.
type respOpts struct {
	inResponseTo   string // default testReqID; "-" for none (unsolicited)
	unsignedResp   bool
	unsignedAssert bool
	encryptTo      *x509.Certificate // encrypt the assertion to this certificate
	signer         *keyPair          // default the IdP's key
	sigMethod      string            // default RSA-SHA256
	now            time.Time         // default t0
	assertionID    string            // default id-assertion-0001
	nameID         string            // default alice@example.com (emailAddress)
	nameIDFormat   string
	attributes     []crewjam.Attribute // default: a typical set
	editAssertion  func(*crewjam.Assertion)
	editResponse   func(*crewjam.Response)
}

func (o respOpts) export() samltest.RespOpts {
	out := samltest.RespOpts{
		InResponseTo: o.inResponseTo, UnsignedResp: o.unsignedResp, UnsignedAssert: o.unsignedAssert, EncryptTo: o.encryptTo,
		SigMethod: o.sigMethod, Now: o.now, AssertionID: o.assertionID, NameID: o.nameID, NameIDFormat: o.nameIDFormat,
		Attributes: o.attributes, EditAssertion: o.editAssertion, EditResponse: o.editResponse,
	}
	if o.signer != nil {
		s := o.signer.export()
		out.Signer = &s
	}
	return out
}

func defaultAttributes() []crewjam.Attribute { return samltest.DefaultAttributes() }

func (p *testIdP) signingContext(t testing.TB, kp keyPair, method ...string) *dsig.SigningContext {
	t.Helper()
	return p.SigningContext(t, kp.export(), method...)
}

func (p *testIdP) assertion(o respOpts) *crewjam.Assertion { return p.Assertion(o.export()) }

func (p *testIdP) assertionElement(t testing.TB, o respOpts, a *crewjam.Assertion) *etree.Element {
	t.Helper()
	return p.AssertionElement(t, o.export(), a)
}

func (p *testIdP) responseDoc(t testing.TB, o respOpts, assertionEls ...*etree.Element) []byte {
	t.Helper()
	return p.ResponseDoc(t, o.export(), assertionEls...)
}

func (p *testIdP) responseXML(t testing.TB, o respOpts) []byte {
	t.Helper()
	return p.ResponseXML(t, o.export())
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// memReplay is an in-memory ReplayCache: the contract the broker's
// ephemeral store implements.
type memReplay struct {
	mu   sync.Mutex
	seen map[string]time.Time
	err  error
}

func newMemReplay() *memReplay { return &memReplay{seen: map[string]time.Time{}} }

func (m *memReplay) Seen(_ context.Context, key string, until time.Time) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.err != nil {
		return false, m.err
	}
	if _, ok := m.seen[key]; ok {
		return true, nil
	}
	m.seen[key] = until
	return false, nil
}

// env is a connector under test with its IdP and fake clock.
type env struct {
	idp    *testIdP
	conn   *saml.Connector
	clock  *clock.Fake
	replay *memReplay
	logs   *providertest.LogBuffer
}

// newEnv opens a connector for the in-process IdP; edit changes the config
// (inline metadata and the keys are already set).
func newEnv(t testing.TB, edit func(*saml.Config)) *env {
	t.Helper()
	k := testKeys(t)
	e := &env{idp: newTestIdP(t, k["idp"], testIdPURL), clock: clock.NewFake(t0), replay: newMemReplay(),
		logs: &providertest.LogBuffer{}}
	cfg := saml.Config{
		IdPMetadata:            e.idp.metadataXML(t),
		SPKey:                  k["sp"].keyPEM,
		SPCertificate:          k["sp"].certPEM,
		RequireSignedResponse:  ptr(true),
		RequireSignedAssertion: ptr(true),
	}
	if edit != nil {
		edit(&cfg)
	}
	deps := providertest.NewDeps(t, e.logs)
	deps.Clock = e.clock
	conn, err := saml.New(context.Background(), saml.Type{BaseURL: testBase, Replay: e.replay},
		providers.Info{ID: testConnID, Name: "Corp SAML"}, cfg, deps)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	e.conn = conn
	return e
}

func ptr[T any](v T) *T { return &v }

// acs posts a response for the pending testReqID.
func (e *env) acs(samlResponse string) (saml.ACSResult, error) {
	return e.conn.HandleACS(context.Background(), saml.ACSRequest{
		SAMLResponse: samlResponse, RelayState: testRelay, ExpectedRelayState: testRelay, RequestIDs: []string{testReqID},
	})
}

func errString(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}

// elementString serializes el as it would appear inside a document.
func elementString(t testing.TB, el *etree.Element) string {
	t.Helper()
	return samltest.ElementString(t, el)
}
