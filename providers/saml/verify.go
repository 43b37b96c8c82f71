package saml

import (
	"bytes"
	"crypto/x509"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/beevik/etree"
	crewjam "github.com/crewjam/saml"
	"github.com/jonboulle/clockwork"
	dsig "github.com/russellhaering/goxmldsig"

	"github.com/latchkeyid/latchkey/internal/clock"
)

// clockAdapter gives crewjam/saml and goxmldsig (which take a clockwork
// clock) the connector's injected clock. Only Now is consulted for
// validity; timers are real.
type clockAdapter struct {
	clockwork.Clock
	c clock.Clock
}

func (a clockAdapter) Now() time.Time                  { return a.c.Now() }
func (a clockAdapter) Since(t time.Time) time.Duration { return a.c.Now().Sub(t) }
func (a clockAdapter) Until(t time.Time) time.Duration { return t.Sub(a.c.Now()) }

// newClockAdapter returns a clockAdapter whose timers are real.
func newClockAdapter(c clock.Clock) clockAdapter {
	return clockAdapter{Clock: clockwork.NewRealClock(), c: c}
}

// errUntrustedCertificate marks a signature made with a certificate the
// IdP metadata does not list.
var errUntrustedCertificate = errors.New("signed with a certificate that is not in the IdP metadata")

// signatureRecorder verifies XML signatures exactly as crewjam/saml does
// by default (goxmldsig against the IdP's metadata certificates, trying
// each when the signature names none) and records which elements (tag and
// ID) carried a valid signature, so the connector can require a signed
// Response or a signed Assertion afterwards. One recorder serves one
// response.
type signatureRecorder struct {
	mu       sync.Mutex
	verified []signedElement
}

type signedElement struct{ tag, id string }

func (r *signatureRecorder) VerifySignature(vc *dsig.ValidationContext, el *etree.Element) error {
	_, err := r.VerifySignedElement(vc, el)
	return err
}

func (r *signatureRecorder) VerifySignedElement(vc *dsig.ValidationContext, el *etree.Element) (*etree.Element, error) {
	roots, err := vc.CertificateStore.Certificates()
	if err != nil {
		return nil, err
	}
	var signed *etree.Element
	if certEl := el.FindElement("./Signature/KeyInfo/X509Data/X509Certificate"); certEl != nil {
		cert, perr := parseBase64Certificate(certEl.Text())
		if perr != nil {
			return nil, fmt.Errorf("cannot validate signature on %s: %w", el.Tag, perr)
		}
		if !containsCert(roots, cert) {
			return nil, fmt.Errorf("cannot validate signature on %s: %w", el.Tag, errUntrustedCertificate)
		}
		if now := vc.Clock.Now(); now.Before(cert.NotBefore) || now.After(cert.NotAfter) {
			return nil, fmt.Errorf("cannot validate signature on %s: %w (valid %s to %s)", el.Tag,
				crewjam.ErrCertificateNotValidNow, cert.NotBefore.UTC().Format(time.RFC3339), cert.NotAfter.UTC().Format(time.RFC3339))
		}
		signed, err = vc.Validate(el)
	} else {
		// Without a certificate in KeyInfo, goxmldsig can only pick one
		// when it trusts exactly one; try each on its own (as crewjam
		// does).
		for _, cert := range roots {
			one := dsig.NewDefaultValidationContext(&dsig.MemoryX509CertificateStore{Roots: []*x509.Certificate{cert}})
			one.IdAttribute = vc.IdAttribute
			one.Clock = vc.Clock
			if signed, err = one.Validate(el); err == nil {
				break
			}
		}
		if len(roots) == 0 {
			err = errors.New("no IdP signing certificate")
		}
	}
	if err != nil {
		return nil, fmt.Errorf("cannot validate signature on %s: %w", el.Tag, err)
	}
	r.mu.Lock()
	r.verified = append(r.verified, signedElement{tag: el.Tag, id: el.SelectAttrValue("ID", "")})
	r.mu.Unlock()
	return signed, nil
}

// signed reports whether an element with this tag (and ID, unless id is
// "") carried a valid signature.
func (r *signatureRecorder) signed(tag, id string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, v := range r.verified {
		if v.tag == tag && (id == "" || v.id == id) {
			return true
		}
	}
	return false
}

func containsCert(list []*x509.Certificate, c *x509.Certificate) bool {
	for _, x := range list {
		if x.Equal(c) {
			return true
		}
	}
	return false
}

// parseBase64Certificate parses a certificate as XML carries it: base64
// DER with any whitespace.
func parseBase64Certificate(s string) (*x509.Certificate, error) {
	der, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		return nil, errors.New("certificate is not base64")
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, errors.New("certificate cannot be parsed")
	}
	return cert, nil
}

// MaxXMLDepth is the deepest element nesting accepted in a SAML response
// or metadata document (a signed, encrypted response nests about 12 deep).
const MaxXMLDepth = 48

var (
	// errDTD: SAML never uses document type declarations; one is how
	// entity-expansion bombs (billion laughs) and external entities
	// arrive, so any is refused before anything expands.
	errDTD = errors.New("document type declarations (DTD) are not allowed")
	// errTooDeep: nesting deeper than MaxXMLDepth.
	errTooDeep = fmt.Errorf("elements are nested deeper than %d levels", MaxXMLDepth)
)

// checkXML scans a document once with a strict tokenizer and refuses
// DTDs (with them entity declarations), nesting deeper than MaxXMLDepth
// and anything that is not well-formed, before a DOM is built.
func checkXML(b []byte) error {
	d := xml.NewDecoder(bytes.NewReader(b))
	d.Strict = true
	// No entity map: only the five predefined entities and character
	// references are known; any other is an error, never an expansion.
	d.Entity = nil
	depth := 0
	seenRoot := false
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("not well-formed: %w", err)
		}
		switch t := tok.(type) {
		case xml.Directive:
			return errDTD
		case xml.StartElement:
			if depth == 0 {
				if seenRoot {
					return errors.New("not well-formed: more than one root element")
				}
				seenRoot = true
			}
			depth++
			if depth > MaxXMLDepth {
				return errTooDeep
			}
		case xml.EndElement:
			depth--
		case xml.CharData:
			if depth == 0 && len(bytes.TrimSpace(t)) > 0 {
				return errors.New("not well-formed: text outside the root element")
			}
		}
	}
	if !seenRoot {
		return errors.New("not well-formed: no root element")
	}
	if depth != 0 {
		return errors.New("not well-formed: unclosed elements")
	}
	return nil
}
