package config

import (
	"reflect"
	"strings"
)

// ParseClient decodes one client document (RFC 7591 metadata as JSON, or
// the same keys in YAML) and applies the defaults and checks a client in
// the config file gets, against base's issuer, keys and connectors. It is
// how the CLI and the admin API validate clients they create. Problem
// paths are the document's keys ("redirect_uris[1]"). No ${ENV} or file:
// references are expanded: the document is data, not configuration.
func ParseClient(doc []byte, base *Config) (ClientConfig, error) {
	root, syntax := parseYAML(doc)
	if syntax != nil {
		return ClientConfig{}, &Problems{List: []Problem{*syntax}}
	}
	const prefix = "clients[0]"
	d := newDecoder()
	tmp := &Config{Clients: make([]ClientConfig, 1)}
	if root != nil && !isNull(root) {
		d.decode(root, reflect.ValueOf(&tmp.Clients[0]).Elem(), prefix)
	}
	applyDefaults(tmp, d.present)
	// Check against the real deployment, not defaults.
	tmp.Issuer, tmp.Keys, tmp.Tokens, tmp.Connectors = base.Issuer, base.Keys, base.Tokens, base.Connectors
	ids := map[string]bool{}
	for _, c := range base.Connectors {
		ids[c.ID] = true
	}
	c := &checker{refs: d.refs}
	c.clients(tmp, ids)
	list := d.problems
	failed := make(map[string]bool, len(list))
	for _, p := range list {
		failed[p.Path] = true
	}
	for _, p := range c.problems {
		if !underFailure(p.Path, failed) {
			list = append(list, located{Problem: p, pos: d.positionOf(p.Path)})
		}
	}
	if len(list) > 0 {
		return ClientConfig{}, &Problems{List: stripPrefix(sortProblems(list), prefix)}
	}
	return tmp.Clients[0], nil
}

func stripPrefix(list []Problem, prefix string) []Problem {
	out := make([]Problem, len(list))
	for i, p := range list {
		p.Path = strings.TrimPrefix(strings.TrimPrefix(p.Path, prefix), ".")
		out[i] = p
	}
	return out
}
