package upstream

import (
	"log/slog"

	"github.com/latchkeyid/latchkey/internal/clock"
	"github.com/latchkeyid/latchkey/providers"
)

// Base is what every connector over HTTP keeps and answers alike: its
// info, the resilient client to its upstream, the clock, the logger and
// the sealer for what it stores. A connector embeds it and gets ID, Name
// and BreakerState.
type Base struct {
	Info   providers.Info
	Client *Client
	Clock  clock.Clock
	Log    *slog.Logger
	Sealer providers.Sealer
}

// NewBase checks deps for a connector of typeName (providers.Deps.Prepare:
// sealerFor names what needs the sealer, "" when nothing does) and builds
// its Base with a Client over deps.HTTPClient.
func NewBase(typeName string, info providers.Info, deps providers.Deps, sealerFor string) (Base, error) {
	clk, log, err := deps.Prepare(typeName, &info, sealerFor)
	if err != nil {
		return Base{}, err
	}
	return Base{Info: info, Client: New(deps.HTTPClient, Settings{Info: info, Logger: log}), Clock: clk, Log: log, Sealer: deps.Sealer}, nil
}

// ID returns the connector's id.
func (b *Base) ID() string { return b.Info.ID }

// Name returns the connector's display name.
func (b *Base) Name() string { return b.Info.Name }

// BreakerState reports the upstream circuit breaker's state.
func (b *Base) BreakerState() string { return b.Client.BreakerState() }
