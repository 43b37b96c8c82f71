package ldap

// PoolStats is what the tests read about a connector's connections.
type PoolStats struct {
	ServiceOpens int64 // service-account connections opened, ever
	Dials        int64 // connections dialled, ever (service and password binds)
	Idle, Open   int   // pooled service connections now
}

func (c *Connector) PoolStats() PoolStats {
	idle, open := c.pool.stats()
	return PoolStats{ServiceOpens: c.pool.opens.Load(), Dials: c.dialer.dials.Load(), Idle: idle, Open: open}
}

// ExpandFilter is expandFilter, for the fuzz target.
var ExpandFilter = expandFilter

// ValueString is valueString, for the attribute value tests.
var ValueString = valueString
