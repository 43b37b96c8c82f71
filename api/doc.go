// Package api is the admin API (openapi.yaml and its handlers) and the
// admin console, both served on the admin listener.
package api
