package providers

import (
	"errors"
	"fmt"
	"log/slog"

	"github.com/latchkeyid/latchkey/internal/clock"
)

// Prepare is what every callback connector's Open does first: it refuses
// an empty connector id, a missing hardened HTTP client and (when
// sealerFor says what it is needed for) a missing Sealer, names the
// connector after its id when it has no name, and returns the clock and
// logger with their defaults. typeName prefixes the errors.
func (d Deps) Prepare(typeName string, info *Info, sealerFor string) (clock.Clock, *slog.Logger, error) {
	switch {
	case info.ID == "":
		return nil, nil, errors.New(typeName + ": connector id is empty")
	case d.HTTPClient == nil:
		return nil, nil, errors.New(typeName + ": Deps.HTTPClient is nil (the hardened client is required)")
	case sealerFor != "" && d.Sealer == nil:
		return nil, nil, fmt.Errorf("%s: Deps.Sealer is nil (needed to keep %s)", typeName, sealerFor)
	}
	if info.Name == "" {
		info.Name = info.ID
	}
	clk := d.Clock
	if clk == nil {
		clk = clock.Real{}
	}
	log := d.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return clk, log, nil
}
