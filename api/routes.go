package api

import "net/http"

// route is one endpoint: method, path under BasePath (ServeMux pattern
// syntax, which is also OpenAPI's), the scope it needs, and its handler.
type route struct {
	Method, Path, Scope string
	Handler             http.HandlerFunc
}

// routes is the API. A test holds it equal to openapi.yaml's paths.
func (s *Server) routes() []route {
	return []route{
		{"GET", "/clients", "clients:read", s.listClients},
		{"POST", "/clients", "clients:write", s.createClient},
		{"GET", "/clients/{id}", "clients:read", s.getClient},
		{"PUT", "/clients/{id}", "clients:write", s.replaceClient},
		{"DELETE", "/clients/{id}", "clients:write", s.deleteClient},
		{"POST", "/clients/{id}/secret", "clients:write", s.rotateClientSecret},

		{"GET", "/connectors", "connectors:read", s.listConnectors},
		{"POST", "/connectors", "connectors:write", s.createConnector},
		{"GET", "/connectors/{id}", "connectors:read", s.getConnector},
		{"PUT", "/connectors/{id}", "connectors:write", s.replaceConnector},
		{"DELETE", "/connectors/{id}", "connectors:write", s.deleteConnector},
		{"POST", "/connectors/{id}/test", "connectors:write", s.testConnector},
		{"POST", "/connectors/{id}/disable", "connectors:write", s.setConnectorDisabled(true)},
		{"POST", "/connectors/{id}/enable", "connectors:write", s.setConnectorDisabled(false)},

		{"GET", "/users", "users:read", s.listUsers},
		{"POST", "/users", "users:write", s.createUser},
		{"GET", "/users/{id}", "users:read", s.getUser},
		{"PATCH", "/users/{id}", "users:write", s.patchUser},
		{"DELETE", "/users/{id}", "users:write", s.deleteUser},
		{"POST", "/users/{id}/disable", "users:write", s.disableUser},
		{"POST", "/users/{id}/enable", "users:write", s.enableUser},
		{"POST", "/users/{id}/mfa/reset", "users:write", s.resetMFA},
		{"GET", "/users/{id}/identities", "users:read", s.listIdentities},
		{"DELETE", "/users/{id}/identities/{connector}/{subject}", "users:write", s.unlinkIdentity},
		{"GET", "/users/{id}/sessions", "users:read", s.listSessions},
		{"DELETE", "/users/{id}/sessions", "users:write", s.revokeSessions},
		{"DELETE", "/users/{id}/sessions/{sid}", "users:write", s.revokeSession},

		{"GET", "/keys", "keys:read", s.listKeys},
		{"POST", "/keys/rotate", "keys:write", s.rotateKeys},

		{"GET", "/audit/events", "audit:read", s.listEvents},
	}
}
