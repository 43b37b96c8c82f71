package config

import "reflect"

// ParseConnector decodes one connector document (YAML or JSON with id,
// type, name and config: the shape of a `connectors:` entry) and applies
// the defaults and checks a connector in the config file gets, including
// the connector type's own validation (WithConnectorTypes). It is how the
// CLI validates connectors it creates or updates. Problem paths are the
// document's keys ("config.clientID"); every problem is reported at once.
// No ${ENV} or file: references are expanded: the document is data.
func ParseConnector(doc []byte, opts ...Option) (ConnectorConfig, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	root, syntax := parseYAML(doc)
	if syntax != nil {
		return ConnectorConfig{}, &Problems{List: []Problem{*syntax}}
	}
	const prefix = "connectors[0]"
	d := newDecoder()
	tmp := &Config{Connectors: make([]ConnectorConfig, 1)}
	if root != nil && !isNull(root) {
		d.decode(root, reflect.ValueOf(&tmp.Connectors[0]).Elem(), prefix)
	}
	applyDefaults(tmp, d.present)
	c := &checker{refs: d.refs}
	c.connectors(tmp.Connectors, o)
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
		return ConnectorConfig{}, &Problems{List: stripPrefix(sortProblems(list), prefix)}
	}
	return tmp.Connectors[0], nil
}
