package saml

import (
	"context"
	"crypto/x509"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	crewjam "github.com/crewjam/saml"

	"github.com/latchkeyid/latchkey/providers/upstream"
)

// untrustedRefetchAfter is how old fetched metadata must be before a
// response signed by an unknown certificate makes us fetch it again (the
// IdP may have rolled its signing key over); it keeps a stream of forged
// responses from turning into a stream of metadata fetches.
const untrustedRefetchAfter = 5 * time.Minute

const metadataNS = "urn:oasis:names:tc:SAML:2.0:metadata"

// idpMetadata is the IdP's metadata, ready to use.
type idpMetadata struct {
	entity    *crewjam.EntityDescriptor
	fetchedAt time.Time
	// expires is when it must be fetched again (zero: never, inline).
	expires time.Time
}

// parseMetadata parses IdP metadata: an EntityDescriptor, or an
// EntitiesDescriptor aggregate holding one IdP (or the one named
// entityID). With certs, the root element must carry a signature by one of
// them and only what the signature covers is read.
func parseMetadata(data []byte, certs []*x509.Certificate, entityID string) (*crewjam.EntityDescriptor, error) {
	if err := checkXML(data); err != nil {
		return nil, fmt.Errorf("not acceptable XML: %w", err)
	}
	if len(certs) > 0 {
		signed, err := crewjam.VerifyMetadataSignature(data, certs)
		if err != nil {
			return nil, fmt.Errorf("signature does not verify with idpMetadataCertificates: %w", err)
		}
		data = signed // read only what the signature covers
	}
	ent, err := unmarshalMetadata(data, entityID)
	if err != nil {
		return nil, fmt.Errorf("not valid SAML metadata: %w", err)
	}
	return ent, nil
}

// unmarshalMetadata reads an EntityDescriptor, or picks one out of an
// EntitiesDescriptor (nested ones included): the one named entityID, else
// the only one with an IDPSSODescriptor. The earliest validUntil of the
// enclosing aggregates applies to it (saml-metadata §4.3.1).
func unmarshalMetadata(data []byte, entityID string) (*crewjam.EntityDescriptor, error) {
	var probe struct{ XMLName xml.Name }
	if err := xml.Unmarshal(data, &probe); err != nil {
		return nil, err
	}
	if probe.XMLName.Space != metadataNS {
		return nil, fmt.Errorf("root element is not in the SAML metadata namespace")
	}
	switch probe.XMLName.Local {
	case "EntityDescriptor":
		var ent crewjam.EntityDescriptor
		if err := xml.Unmarshal(data, &ent); err != nil {
			return nil, err
		}
		if entityID != "" && ent.EntityID != entityID {
			return nil, fmt.Errorf("entityID is %q, not idpEntityID %q", ent.EntityID, entityID)
		}
		return &ent, nil
	case "EntitiesDescriptor":
		var all crewjam.EntitiesDescriptor
		if err := xml.Unmarshal(data, &all); err != nil {
			return nil, err
		}
		var found []crewjam.EntityDescriptor
		var walk func(e *crewjam.EntitiesDescriptor, validUntil *time.Time)
		walk = func(e *crewjam.EntitiesDescriptor, validUntil *time.Time) {
			if e.ValidUntil != nil && !e.ValidUntil.IsZero() && (validUntil == nil || e.ValidUntil.Before(*validUntil)) {
				validUntil = e.ValidUntil
			}
			for _, ed := range e.EntityDescriptors {
				if (entityID != "" && ed.EntityID == entityID) || (entityID == "" && len(ed.IDPSSODescriptors) > 0) {
					if validUntil != nil && (ed.ValidUntil.IsZero() || validUntil.Before(ed.ValidUntil)) {
						ed.ValidUntil = *validUntil
					}
					found = append(found, ed)
				}
			}
			for i := range e.EntitiesDescriptors {
				walk(&e.EntitiesDescriptors[i], validUntil)
			}
		}
		walk(&all, nil)
		switch {
		case len(found) == 1:
			return &found[0], nil
		case len(found) == 0 && entityID != "":
			return nil, fmt.Errorf("no entity %q in the aggregate", entityID)
		case len(found) == 0:
			return nil, errors.New("no entity with an IDPSSODescriptor in the aggregate")
		case entityID != "":
			return nil, fmt.Errorf("entity %q appears %d times in the aggregate", entityID, len(found))
		default:
			return nil, fmt.Errorf("the aggregate holds %d identity providers: set idpEntityID", len(found))
		}
	}
	return nil, fmt.Errorf("root element is %s, not EntityDescriptor or EntitiesDescriptor", probe.XMLName.Local)
}

// checkEntity checks that the metadata describes a usable IdP for this
// connector: an IDPSSODescriptor with a signing certificate and a
// SingleSignOnService for the configured binding.
func checkEntity(ent *crewjam.EntityDescriptor, post bool) error {
	if ent.EntityID == "" {
		return errors.New("the metadata has no entityID")
	}
	if len(ent.IDPSSODescriptors) == 0 {
		return errors.New("the metadata has no IDPSSODescriptor: it does not describe an identity provider")
	}
	sp := crewjam.ServiceProvider{IDPMetadata: ent}
	binding, name := crewjam.HTTPRedirectBinding, "HTTP-Redirect"
	if post {
		binding, name = crewjam.HTTPPostBinding, "HTTP-POST"
	}
	loc := sp.GetSSOBindingLocation(binding)
	if loc == "" {
		return fmt.Errorf("the IdP offers no %s SingleSignOnService (set binding to the other one)", name)
	}
	if msg := upstream.CheckURL(loc); msg != "" {
		return fmt.Errorf("SingleSignOnService %s: %s", name, msg)
	}
	if _, err := signingCertificates(ent); err != nil {
		return err
	}
	return nil
}

// signingCertificates returns the IdP's signing certificates (KeyDescriptor
// use="signing" or no use).
func signingCertificates(ent *crewjam.EntityDescriptor) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	for _, d := range ent.IDPSSODescriptors {
		for _, kd := range d.KeyDescriptors {
			if kd.Use != "" && kd.Use != "signing" {
				continue
			}
			for _, c := range kd.KeyInfo.X509Data.X509Certificates {
				cert, err := parseBase64Certificate(c.Data)
				if err != nil {
					return nil, fmt.Errorf("the metadata has an unreadable signing certificate: %w", err)
				}
				out = append(out, cert)
			}
		}
	}
	if len(out) == 0 {
		return nil, errors.New("the metadata has no signing certificate for the IdP")
	}
	return out, nil
}

// metadata returns the IdP metadata: the inline one, or the one fetched
// from idpMetadataURL, fetched on first use and again after
// idpMetadataRefresh or its validUntil. One fetch runs at a time; a failed
// re-fetch keeps the old metadata; a failed first fetch is
// ErrUpstreamUnavailable.
func (c *Connector) metadata(ctx context.Context) (*idpMetadata, error) {
	if c.set.entity != nil {
		return &idpMetadata{entity: c.set.entity}, nil
	}
	if m := c.cachedMetadata(); m != nil && c.clock.Now().Before(m.expires) {
		return m, nil
	}
	return c.refetch(ctx, func(old *idpMetadata) bool {
		return old != nil && c.clock.Now().Before(old.expires)
	})
}

// refetchUntrusted fetches the metadata again after a response was signed
// by a certificate it does not list, unless it is inline or was fetched
// within untrustedRefetchAfter. It reports whether new metadata is in use.
func (c *Connector) refetchUntrusted(ctx context.Context, used *idpMetadata) bool {
	if c.set.entity != nil {
		return false
	}
	m, err := c.refetch(ctx, func(old *idpMetadata) bool {
		return old != nil && (old != used || c.clock.Now().Sub(old.fetchedAt) < untrustedRefetchAfter)
	})
	return err == nil && m != used
}

// refetch fetches the metadata unless fresh(current) says the current one
// will do (checked again once this caller holds the fetch slot).
func (c *Connector) refetch(ctx context.Context, fresh func(*idpMetadata) bool) (*idpMetadata, error) {
	if old := c.cachedMetadata(); fresh(old) {
		return old, nil
	}
	select {
	case c.fetchSem <- struct{}{}:
		defer func() { <-c.fetchSem }()
	case <-ctx.Done():
		return nil, fmt.Errorf("saml: wait for the IdP metadata: %w", ctx.Err())
	}
	old := c.cachedMetadata()
	if fresh(old) {
		return old, nil // another caller fetched it while we waited
	}
	m, err := c.fetchMetadata(ctx)
	if err != nil {
		if old != nil {
			c.log.WarnContext(ctx, "saml IdP metadata re-fetch failed; keeping the previous metadata",
				slog.String("connector", c.info.ID), slog.String("error", err.Error()))
			// Try again in a minute, not on every login meanwhile.
			kept := *old
			if retry := c.clock.Now().Add(MinMetadataRefresh); kept.expires.Before(retry) {
				kept.expires = retry
			}
			c.mu.Lock()
			c.md = &kept
			c.mu.Unlock()
			return &kept, nil
		}
		return nil, err
	}
	c.mu.Lock()
	c.md = m
	c.mu.Unlock()
	c.log.InfoContext(ctx, "saml IdP metadata fetched", slog.String("connector", c.info.ID),
		slog.String("idp", m.entity.EntityID))
	return m, nil
}

func (c *Connector) cachedMetadata() *idpMetadata {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.md
}

func (c *Connector) fetchMetadata(ctx context.Context) (*idpMetadata, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.set.cfg.IdPMetadataURL, nil)
	if err != nil {
		return nil, fmt.Errorf("saml: metadata request: %w", err)
	}
	req.Header.Set("Accept", "application/samlmetadata+xml, application/xml, text/xml")
	resp, err := c.client.HTTP.Do(req)
	if err != nil {
		return nil, c.client.Unavailable(fmt.Errorf("IdP metadata: %w", err))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, c.client.Unavailable(&upstream.StatusError{Endpoint: "IdP metadata", Status: resp.StatusCode})
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, MaxMetadataBytes+1))
	if err != nil {
		return nil, c.client.Unavailable(fmt.Errorf("IdP metadata: read: %w", err))
	}
	if len(data) > MaxMetadataBytes {
		return nil, c.client.Unavailable(fmt.Errorf("IdP metadata: larger than %d bytes", MaxMetadataBytes))
	}
	ent, err := parseMetadata(data, c.set.metadataCerts, c.set.cfg.IdPEntityID)
	if err == nil {
		err = checkEntity(ent, c.set.post)
	}
	if err != nil {
		return nil, c.client.Unavailable(fmt.Errorf("IdP metadata: %w", err))
	}
	now := c.clock.Now()
	m := &idpMetadata{entity: ent, fetchedAt: now, expires: now.Add(c.set.metadataRefresh)}
	if !ent.ValidUntil.IsZero() && ent.ValidUntil.Before(m.expires) {
		// Expired metadata must not be relied on (saml-metadata §4.3.1):
		// fetch again then, but not more than once a minute.
		m.expires = ent.ValidUntil
		if m.expires.Before(now.Add(MinMetadataRefresh)) {
			m.expires = now.Add(MinMetadataRefresh)
		}
	}
	return m, nil
}
