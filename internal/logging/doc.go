// Package logging builds the process's *slog.Logger from config and carries
// the request id in the context, so every ...Context log call made while
// serving a request names it.
package logging
