package ldap_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/latchkeyid/latchkey/internal/testenv"
)

// The seeded directory. Passwords are distinctive so the log test can
// look for them.
const (
	suffix          = "dc=example,dc=org"
	serviceDN       = "cn=latchkey,ou=system," + suffix
	servicePassword = "svc-Pa55-7c1e"
	alicePassword   = "alice-Pa55-91f3"
	bobPassword     = "bob-Pa55-2d8a"
	carolPassword   = "carol-Pa55-5e07"
	davePassword    = "dave-Pa55-a4b2"
	erinPassword    = "erin-Pa55-66c9"
	twinPassword    = "twin-Pa55-0b1d"

	aliceUUID = "7f3a0c52-1b1e-4c6e-9d0a-5a1f0c3b2a01"
	bobUUID   = "7f3a0c52-1b1e-4c6e-9d0a-5a1f0c3b2a02"
	carolUUID = "7f3a0c52-1b1e-4c6e-9d0a-5a1f0c3b2a03"
	daveUUID  = "7f3a0c52-1b1e-4c6e-9d0a-5a1f0c3b2a04"
	erinUUID  = "7f3a0c52-1b1e-4c6e-9d0a-5a1f0c3b2a05"

	aliceDN = "uid=alice,ou=people," + suffix
	bobDN   = "uid=bob,ou=people," + suffix
	carolDN = "uid=carol,ou=people," + suffix
	daveDN  = "cn=Dave Special,ou=people," + suffix
	erinDN  = `cn=Smith\, Erin,ou=people,` + suffix

	// daveUID holds every filter metacharacter: a login with it must
	// match dave exactly, which shows the escaping keeps values literal.
	daveUID = `d(a)v*e\`
)

// seedLDIF is the directory: alice (admins, staff), bob (staff; ops by
// posixGroup memberUid; an {SSHA} password), carol (no groups, no mail),
// dave (a uid full of filter metacharacters), erin (a DN with an
// escaped comma, in staff), and two entries with uid=twin.
func seedLDIF() string {
	return `dn: ` + suffix + `
objectClass: dcObject
objectClass: organization
o: Example
dc: example

dn: ou=people,` + suffix + `
objectClass: organizationalUnit
ou: people

dn: ou=contractors,` + suffix + `
objectClass: organizationalUnit
ou: contractors

dn: ou=groups,` + suffix + `
objectClass: organizationalUnit
ou: groups

dn: ou=system,` + suffix + `
objectClass: organizationalUnit
ou: system

dn: ` + serviceDN + `
objectClass: organizationalRole
objectClass: simpleSecurityObject
cn: latchkey
userPassword: ` + servicePassword + `

dn: ` + aliceDN + `
objectClass: inetOrgPerson
uid: alice
cn: Alice Liddell
sn: Liddell
mail: alice@example.org
employeeNumber: E-1001
departmentNumber: research
departmentNumber: wonderland
userPassword: ` + alicePassword + `
entryUUID: ` + aliceUUID + `

dn: ` + bobDN + `
objectClass: inetOrgPerson
uid: bob
cn: Bob Builder
sn: Builder
mail: bob@example.org
departmentNumber: construction
userPassword: ` + ssha(bobPassword) + `
entryUUID: ` + bobUUID + `

dn: ` + carolDN + `
objectClass: inetOrgPerson
uid: carol
cn: Carol Danvers
sn: Danvers
userPassword: ` + carolPassword + `
entryUUID: ` + carolUUID + `

dn: ` + daveDN + `
objectClass: inetOrgPerson
uid: ` + daveUID + `
cn: Dave Special
sn: Special
mail: dave@example.org
userPassword: ` + davePassword + `
entryUUID: ` + daveUUID + `

dn: ` + erinDN + `
objectClass: inetOrgPerson
uid: erin
cn: Smith, Erin
sn: Smith
mail: erin@example.org
userPassword: ` + erinPassword + `
entryUUID: ` + erinUUID + `

dn: uid=twin,ou=people,` + suffix + `
objectClass: inetOrgPerson
uid: twin
cn: Twin One
sn: One
userPassword: ` + twinPassword + `

dn: uid=twin,ou=contractors,` + suffix + `
objectClass: inetOrgPerson
uid: twin
cn: Twin Two
sn: Two
userPassword: ` + twinPassword + `

dn: cn=admins,ou=groups,` + suffix + `
objectClass: groupOfNames
cn: admins
member: ` + aliceDN + `

dn: cn=staff,ou=groups,` + suffix + `
objectClass: groupOfNames
cn: staff
member: ` + aliceDN + `
member: ` + bobDN + `
member: ` + erinDN + `

dn: cn=ops,ou=groups,` + suffix + `
objectClass: posixGroup
cn: ops
gidNumber: 5000
memberUid: bob
`
}

// ssha is an OpenLDAP {SSHA} password value.
func ssha(pw string) string {
	salt := []byte("8bytesal")
	sum := sha1.Sum(append([]byte(pw), salt...))
	return "{SSHA}" + base64.StdEncoding.EncodeToString(append(sum[:], salt...))
}

// directory is a throwaway OpenLDAP slapd on 127.0.0.1: plain LDAP (with
// StartTLS) on one port, LDAPS on another, a CA made for the test.
type directory struct {
	t          *testing.T
	slapd      string
	dir        string
	conf       string
	ldapPort   int
	ldapsPort  int
	caFile     string // the CA that signed the server's certificate
	otherCA    string // a CA that did not
	serverCert string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
	out  *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startDirectory seeds a directory with slapadd and starts slapd. It is
// stopped (by PID) when the test ends.
func startDirectory(t *testing.T) *directory {
	t.Helper()
	d := &directory{
		t:     t,
		slapd: testenv.Program(t, "slapd"),
		dir:   t.TempDir(),
	}
	slapadd := testenv.Program(t, "slapadd")
	for _, s := range []string{"core", "cosine", "inetorgperson", "nis"} {
		if _, err := os.Stat("/etc/ldap/schema/" + s + ".schema"); err != nil {
			testenv.Missing(t, "OpenLDAP schema %s: %v (apt-get install slapd)", s, err)
		}
	}
	d.writeCerts()
	if err := os.Mkdir(filepath.Join(d.dir, "db"), 0o700); err != nil {
		t.Fatal(err)
	}
	d.conf = filepath.Join(d.dir, "slapd.conf")
	writeFile(t, d.conf, fmt.Sprintf(`include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
include /etc/ldap/schema/nis.schema
pidfile %[1]s/slapd.pid
argsfile %[1]s/slapd.args
modulepath /usr/lib/ldap
moduleload back_mdb
TLSCACertificateFile %[1]s/ca.pem
TLSCertificateFile %[1]s/server.pem
TLSCertificateKeyFile %[1]s/server.key
sizelimit 500
database mdb
suffix "%[2]s"
rootdn "cn=admin,%[2]s"
rootpw admin-not-used
directory %[1]s/db
maxsize 10485760
access to attrs=userPassword by anonymous auth by * none
access to * by * read
`, d.dir, suffix))
	ldif := filepath.Join(d.dir, "seed.ldif")
	writeFile(t, ldif, seedLDIF())
	if out, err := exec.Command(slapadd, "-f", d.conf, "-l", ldif).CombinedOutput(); err != nil {
		t.Fatalf("slapadd: %v\n%s", err, out)
	}
	ports := freePorts(t, 2)
	d.ldapPort, d.ldapsPort = ports[0], ports[1]
	d.start()
	t.Cleanup(d.stop)
	return d
}

func (d *directory) ldapURL() string  { return fmt.Sprintf("ldap://127.0.0.1:%d", d.ldapPort) }
func (d *directory) ldapsURL() string { return fmt.Sprintf("ldaps://127.0.0.1:%d", d.ldapsPort) }

// start runs slapd in the foreground (-d 0: no fork, so the PID is the
// server's) and waits, at most 15 s, until it answers an LDAP search.
func (d *directory) start() {
	t := d.t
	t.Helper()
	d.mu.Lock()
	defer d.mu.Unlock()
	d.out = &syncBuffer{}
	cmd := exec.Command(d.slapd, "-d", "0", "-f", d.conf,
		"-h", fmt.Sprintf("ldap://127.0.0.1:%d/ ldaps://127.0.0.1:%d/", d.ldapPort, d.ldapsPort))
	cmd.Stdout, cmd.Stderr = d.out, d.out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start slapd: %v", err)
	}
	d.cmd, d.done = cmd, make(chan struct{})
	go func(done chan struct{}) { _ = cmd.Wait(); close(done) }(d.done)

	deadline := time.Now().Add(15 * time.Second)
	for {
		select {
		case <-d.done:
			t.Fatalf("slapd exited during start: %v\n%s", cmd.ProcessState, d.out)
		default:
		}
		if err := ping(d.ldapURL()); err == nil {
			return
		} else if time.Now().After(deadline) {
			t.Fatalf("slapd did not answer within 15s: %v\n%s", err, d.out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop ends slapd by its PID: SIGTERM, then SIGKILL after 10 s.
func (d *directory) stop() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cmd == nil {
		return
	}
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.done:
	case <-time.After(10 * time.Second):
		_ = d.cmd.Process.Kill()
		<-d.done
	}
	d.cmd = nil
}

// ping reads the root DSE anonymously, bounded by 2 s.
func ping(url string) error {
	l, err := goldap.DialURL(url, goldap.DialWithDialer(&net.Dialer{Timeout: 2 * time.Second}))
	if err != nil {
		return err
	}
	defer l.Close()
	l.SetTimeout(2 * time.Second)
	_, err = l.Search(goldap.NewSearchRequest("", goldap.ScopeBaseObject, goldap.NeverDerefAliases, 1, 2, false,
		"(objectClass=*)", []string{"namingContexts"}, nil))
	return err
}

func freePort(t *testing.T) int {
	t.Helper()
	return freePorts(t, 1)[0]
}

// freePorts returns n distinct loopback ports that were free a moment ago
// (all held open together, so they differ).
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	ports := make([]int, n)
	for i := range ports {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		ports[i] = ln.Addr().(*net.TCPAddr).Port
	}
	return ports
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// writeCerts makes a CA, a server certificate for 127.0.0.1 and localhost
// signed by it, and an unrelated CA.
func (d *directory) writeCerts() {
	t := d.t
	t.Helper()
	caKey, caCert, caPEM := newCA(t, "Latchkey test LDAP CA")
	_, _, otherPEM := newCA(t, "Some other CA")
	srvKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames:     []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &srvKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(srvKey)
	if err != nil {
		t.Fatal(err)
	}
	d.caFile = filepath.Join(d.dir, "ca.pem")
	d.otherCA = filepath.Join(d.dir, "other-ca.pem")
	d.serverCert = filepath.Join(d.dir, "server.pem")
	writeFile(t, d.caFile, caPEM)
	writeFile(t, d.otherCA, otherPEM)
	writeFile(t, d.serverCert, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})))
	writeFile(t, filepath.Join(d.dir, "server.key"), string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})))
}

func newCA(t *testing.T, name string) (*ecdsa.PrivateKey, *x509.Certificate, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return key, cert, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

// hangingServer accepts TCP connections and never answers: a directory
// that hangs. It closes when the test ends.
func hangingServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return "ldap://" + ln.Addr().String()
}
