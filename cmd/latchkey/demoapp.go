package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/spf13/cobra"

	"github.com/latchkeyid/latchkey/internal/demoapp"
	"github.com/latchkeyid/latchkey/internal/logging"
)

func newDemoAppCmd(c *cli) *cobra.Command {
	var clientID, listen, baseURL string
	cmd := &cobra.Command{
		Use:   "demo-app",
		Short: "run the demo relying party on http://localhost:5555 (uses the config's demo-app client)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := c.loadConfig()
			if err != nil {
				return err
			}
			var secret string
			found := false
			for _, cl := range cfg.Clients {
				if cl.ID == clientID {
					secret, found = cl.Secret.Reveal(), true
				}
			}
			if !found {
				return fmt.Errorf("the config has no client %q for the demo app (see deploy/examples/quickstart.yaml)", clientID)
			}
			log, err := logging.New(c.stderr, cfg.Logging.Format, cfg.Logging.Level)
			if err != nil {
				return err
			}
			app := demoapp.New(demoapp.Options{Issuer: cfg.Issuer, ClientID: clientID, ClientSecret: secret, BaseURL: baseURL, Logger: log})
			return serveUntilDone(cmd.Context(), listen, app, log, "demo app serving", baseURL)
		},
	}
	cmd.Flags().StringVar(&clientID, "client-id", "demo-app", "the client the demo app signs in as")
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:5555", "address to listen on")
	cmd.Flags().StringVar(&baseURL, "base-url", "http://localhost:5555", "where the browser reaches the demo app")
	return cmd
}

// serveUntilDone serves h on addr until ctx ends, then drains for 5 s.
func serveUntilDone(ctx context.Context, addr string, h http.Handler, log *slog.Logger, msg, url string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", addr, err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	log.Info(msg, slog.String("url", url))
	select {
	case err := <-done:
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	return srv.Shutdown(sctx)
}
