package console

import (
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/latchkeyid/latchkey/api"
	"github.com/latchkeyid/latchkey/broker/keys"
	"github.com/latchkeyid/latchkey/storage"
)

func (c *Console) base(title, active string, a admin) page {
	return page{Title: title, Active: active, Admin: a.Name, CSRF: a.CSRF}
}

// showProblem puts an API problem on the page: its field problems, or
// its detail.
func showProblem(p *page, prob *api.Problem) {
	if len(prob.Errors) > 0 {
		p.Problems = prob.Errors
		return
	}
	p.Error = prob.Detail
}

// act runs one API call for a form and puts its outcome on p: the
// problem, or done as the flash. It answers and returns false when the
// call failed on the server's side.
func (c *Console) act(w http.ResponseWriter, r *http.Request, a admin, p *page, method, path string, out any, done string) bool {
	prob, err := c.call(r.Context(), a, method, path, nil, out)
	if err != nil {
		c.fail(w, r, err)
		return false
	}
	if prob != nil {
		showProblem(p, prob)
	} else {
		p.Flash = done
	}
	return true
}

// --- dashboard ---------------------------------------------------------------

type hourRow struct {
	Hour, Connector string
	OK, Failed      int
}

type dashboardData struct {
	Logins, Failures, Sessions, Users, Clients, Connectors, Max int
	Hours                                                       []hourRow
}

func (c *Console) dashboard(w http.ResponseWriter, r *http.Request, a admin) {
	ctx := r.Context()
	since := c.o.Clock.Now().Add(-24 * time.Hour)
	d := dashboardData{}
	rows := map[[2]string]*hourRow{}
	for _, typ := range []string{"user.login.succeeded", "user.login.failed"} {
		events, err := c.o.Store.ListEvents(ctx, storage.EventFilter{Since: since, Type: typ})
		if err != nil {
			c.fail(w, r, err)
			return
		}
		for _, e := range events {
			conn := e.ConnectorID
			if conn == "" {
				conn = "local"
			}
			k := [2]string{e.Time.UTC().Format("2006-01-02 15:00"), conn}
			row := rows[k]
			if row == nil {
				row = &hourRow{Hour: k[0], Connector: k[1]}
				rows[k] = row
			}
			if typ == "user.login.succeeded" {
				row.OK++
				d.Logins++
			} else {
				row.Failed++
				d.Failures++
			}
			d.Max = max(d.Max, row.OK, row.Failed)
		}
	}
	for _, row := range rows {
		d.Hours = append(d.Hours, *row)
	}
	sort.Slice(d.Hours, func(i, j int) bool {
		if d.Hours[i].Hour != d.Hours[j].Hour {
			return d.Hours[i].Hour > d.Hours[j].Hour
		}
		return d.Hours[i].Connector < d.Hours[j].Connector
	})
	users, err := c.o.Store.ListUsers(ctx)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	clients, err := c.o.Store.ListClients(ctx)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	conns, err := c.o.Store.ListConnectors(ctx)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	d.Users, d.Clients, d.Connectors = len(users), len(clients), len(conns)
	if c.o.Sessions != nil {
		if d.Sessions, err = c.o.Sessions.CountActive(ctx); err != nil {
			c.fail(w, r, err)
			return
		}
	}
	p := c.base("Dashboard", "dashboard", a)
	p.Data = d
	c.render(w, r, http.StatusOK, "dashboard", p)
}

// --- clients -----------------------------------------------------------------

type clientsData struct {
	Clients           []storage.Client
	Form              map[string]any
	Secret, SecretFor string
}

func (c *Console) clientsPage(w http.ResponseWriter, r *http.Request, a admin, status int, p page, d clientsData) {
	var list struct{ Clients []storage.Client }
	if _, err := c.call(r.Context(), a, "GET", "/clients", nil, &list); err != nil {
		c.fail(w, r, err)
		return
	}
	d.Clients = list.Clients
	if d.Form == nil {
		d.Form = map[string]any{}
	}
	p.Data = d
	c.render(w, r, status, "clients", p)
}

func (c *Console) clients(w http.ResponseWriter, r *http.Request, a admin) {
	c.clientsPage(w, r, a, http.StatusOK, c.base("Clients", "clients", a), clientsData{})
}

func lines(s string) []string {
	out := []string{}
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

func (c *Console) createClient(w http.ResponseWriter, r *http.Request, a admin) {
	form := map[string]any{"client_id": r.PostFormValue("client_id"), "client_name": r.PostFormValue("client_name"),
		"redirect_uris": r.PostFormValue("redirect_uris"), "public": r.PostFormValue("public") == "true"}
	body := map[string]any{"client_id": form["client_id"], "redirect_uris": lines(r.PostFormValue("redirect_uris"))}
	if n := r.PostFormValue("client_name"); n != "" {
		body["client_name"] = n
	}
	if form["public"] == true {
		body["public"] = true
	}
	var created struct {
		Client       storage.Client `json:"client"`
		ClientSecret string         `json:"client_secret"`
	}
	p := c.base("Clients", "clients", a)
	prob, err := c.call(r.Context(), a, "POST", "/clients", body, &created)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	if prob != nil {
		showProblem(&p, prob)
		c.clientsPage(w, r, a, prob.Status, p, clientsData{Form: form})
		return
	}
	p.Flash = fmt.Sprintf("Registered client %s.", created.Client.ID)
	c.clientsPage(w, r, a, http.StatusOK, p, clientsData{Secret: created.ClientSecret, SecretFor: created.Client.ID})
}

func (c *Console) clientSecret(w http.ResponseWriter, r *http.Request, a admin) {
	id := r.PathValue("id")
	var res struct {
		ClientSecret string `json:"client_secret"`
	}
	p := c.base("Clients", "clients", a)
	if !c.act(w, r, a, &p, "POST", "/clients/"+esc(id)+"/secret", &res, "The old secret of "+id+" no longer works.") {
		return
	}
	c.clientsPage(w, r, a, http.StatusOK, p, clientsData{Secret: res.ClientSecret, SecretFor: id})
}

func (c *Console) deleteClient(w http.ResponseWriter, r *http.Request, a admin) {
	id := r.PathValue("id")
	p := c.base("Clients", "clients", a)
	if c.act(w, r, a, &p, "DELETE", "/clients/"+esc(id), nil, "Deleted client "+id+".") {
		c.clientsPage(w, r, a, http.StatusOK, p, clientsData{})
	}
}

// --- connectors ---------------------------------------------------------------

type connectorsData struct {
	Connectors []storage.Connector
	Types      []string
	Type       string
	Fields     []Field
	Form       map[string]string
}

// connectorsPage lists the connectors and the form for the chosen type.
func (c *Console) connectorsPage(w http.ResponseWriter, r *http.Request, a admin, status int, p page, typ string, form map[string]string) {
	var list struct{ Connectors []storage.Connector }
	if _, err := c.call(r.Context(), a, "GET", "/connectors", nil, &list); err != nil {
		c.fail(w, r, err)
		return
	}
	types := make([]string, 0, len(c.o.ConnectorTypes))
	for t := range c.o.ConnectorTypes {
		types = append(types, t)
	}
	sort.Strings(types)
	if _, ok := c.o.ConnectorTypes[typ]; !ok && len(types) > 0 {
		typ = types[0]
		if _, ok := c.o.ConnectorTypes["oidc"]; ok {
			typ = "oidc"
		}
	}
	if form == nil {
		form = map[string]string{}
	}
	p.Data = connectorsData{Connectors: list.Connectors, Types: types, Type: typ, Fields: c.o.ConnectorTypes[typ], Form: form}
	c.render(w, r, status, "connectors", p)
}

func (c *Console) connectors(w http.ResponseWriter, r *http.Request, a admin) {
	c.connectorsPage(w, r, a, http.StatusOK, c.base("Connectors", "connectors", a), r.URL.Query().Get("type"), nil)
}

func (c *Console) createConnector(w http.ResponseWriter, r *http.Request, a admin) {
	typ := r.PostFormValue("type")
	fields, ok := c.o.ConnectorTypes[typ]
	p := c.base("Connectors", "connectors", a)
	form := map[string]string{"id": r.PostFormValue("id"), "name": r.PostFormValue("name")}
	for _, f := range fields {
		if !f.Secret { // a secret is never echoed back
			form["config."+f.Name] = r.PostFormValue("config." + f.Name)
		}
	}
	if !ok {
		p.Problems = []api.FieldProblem{{Field: "type", Message: fmt.Sprintf("%q is not a connector type", typ)}}
		c.connectorsPage(w, r, a, http.StatusUnprocessableEntity, p, "", form)
		return
	}
	cfg, probs := configFromForm(fields, r.PostFormValue)
	if len(probs) > 0 {
		p.Problems = probs
		c.connectorsPage(w, r, a, http.StatusUnprocessableEntity, p, typ, form)
		return
	}
	body := map[string]any{"id": form["id"], "type": typ, "config": cfg}
	if form["name"] != "" {
		body["name"] = form["name"]
	}
	prob, err := c.call(r.Context(), a, "POST", "/connectors", body, nil)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	if prob != nil {
		showProblem(&p, prob)
		c.connectorsPage(w, r, a, prob.Status, p, typ, form)
		return
	}
	p.Flash = "Added connector " + form["id"] + "; it shows on the login page within seconds."
	c.connectorsPage(w, r, a, http.StatusOK, p, typ, nil)
}

func (c *Console) testConnector(w http.ResponseWriter, r *http.Request, a admin) {
	id := r.PathValue("id")
	var res struct {
		OK    bool   `json:"ok"`
		Error string `json:"error"`
	}
	p := c.base("Connectors", "connectors", a)
	prob, err := c.call(r.Context(), a, "POST", "/connectors/"+esc(id)+"/test", nil, &res)
	switch {
	case err != nil:
		c.fail(w, r, err)
		return
	case prob != nil:
		showProblem(&p, prob)
	case res.OK:
		p.Flash = "Connector " + id + " works: its upstream answered."
	default:
		p.Error = "Connector " + id + " does not work: " + res.Error
	}
	c.connectorsPage(w, r, a, http.StatusOK, p, "", nil)
}

// connectorAction posts to /connectors/{id}/<action> and shows the list.
func (c *Console) connectorAction(action, done string) func(http.ResponseWriter, *http.Request, admin) {
	return func(w http.ResponseWriter, r *http.Request, a admin) {
		id := r.PathValue("id")
		p := c.base("Connectors", "connectors", a)
		if c.act(w, r, a, &p, "POST", "/connectors/"+esc(id)+"/"+action, nil, "Connector "+id+" "+done+".") {
			c.connectorsPage(w, r, a, http.StatusOK, p, "", nil)
		}
	}
}

func (c *Console) deleteConnector(w http.ResponseWriter, r *http.Request, a admin) {
	id := r.PathValue("id")
	p := c.base("Connectors", "connectors", a)
	if c.act(w, r, a, &p, "DELETE", "/connectors/"+esc(id), nil, "Deleted connector "+id+".") {
		c.connectorsPage(w, r, a, http.StatusOK, p, "", nil)
	}
}

// --- users ------------------------------------------------------------------

type userRow struct {
	ID       string   `json:"id"`
	Username string   `json:"username"`
	Email    string   `json:"email"`
	Name     string   `json:"name"`
	Groups   []string `json:"groups"`
	Disabled bool     `json:"disabled"`
}

type sessionRow struct {
	SID            string    `json:"sid"`
	AuthTime       time.Time `json:"auth_time"`
	ConnectorID    string    `json:"connector_id"`
	AMR            []string  `json:"amr"`
	Clients        []string  `json:"clients"`
	AbsoluteExpiry time.Time `json:"absolute_expiry"`
	IP             string    `json:"ip"`
	UserAgent      string    `json:"user_agent"`
}

type identityRow struct {
	ConnectorID string    `json:"connector_id"`
	Subject     string    `json:"subject"`
	Email       string    `json:"email"`
	LastLoginAt time.Time `json:"last_login_at"`
}

func (c *Console) usersPage(w http.ResponseWriter, r *http.Request, a admin, p page) {
	var list struct{ Users []userRow }
	if _, err := c.call(r.Context(), a, "GET", "/users", nil, &list); err != nil {
		c.fail(w, r, err)
		return
	}
	p.Data = struct{ Users []userRow }{list.Users}
	c.render(w, r, http.StatusOK, "users", p)
}

func (c *Console) users(w http.ResponseWriter, r *http.Request, a admin) {
	c.usersPage(w, r, a, c.base("Users", "users", a))
}

func (c *Console) userPage(w http.ResponseWriter, r *http.Request, a admin, id string, p page) {
	var u userRow
	prob, err := c.call(r.Context(), a, "GET", "/users/"+esc(id), nil, &u)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	if prob != nil {
		c.errorPage(w, r, prob.Status, prob.Detail)
		return
	}
	var s struct{ Sessions []sessionRow }
	var i struct{ Identities []identityRow }
	if _, err := c.call(r.Context(), a, "GET", "/users/"+esc(id)+"/sessions", nil, &s); err != nil {
		c.fail(w, r, err)
		return
	}
	if _, err := c.call(r.Context(), a, "GET", "/users/"+esc(id)+"/identities", nil, &i); err != nil {
		c.fail(w, r, err)
		return
	}
	p.Title = "User " + u.Username
	p.Data = struct {
		User       userRow
		Sessions   []sessionRow
		Identities []identityRow
	}{u, s.Sessions, i.Identities}
	c.render(w, r, http.StatusOK, "user", p)
}

func (c *Console) user(w http.ResponseWriter, r *http.Request, a admin) {
	c.userPage(w, r, a, r.PathValue("id"), c.base("User", "users", a))
}

// userAction posts to /users/{id}/<action> and shows the list again.
func (c *Console) userAction(action, done string) func(http.ResponseWriter, *http.Request, admin) {
	return func(w http.ResponseWriter, r *http.Request, a admin) {
		id := r.PathValue("id")
		p := c.base("Users", "users", a)
		if !c.act(w, r, a, &p, "POST", "/users/"+esc(id)+"/"+action, nil, "User "+id+": "+done+".") {
			return
		}
		if action == "mfa/reset" {
			c.userPage(w, r, a, id, p)
			return
		}
		c.usersPage(w, r, a, p)
	}
}

func (c *Console) revokeSessions(w http.ResponseWriter, r *http.Request, a admin) {
	id := r.PathValue("id")
	path := "/users/" + esc(id) + "/sessions"
	if sid := r.PostFormValue("sid"); sid != "" {
		path += "/" + esc(sid)
	}
	p := c.base("User", "users", a)
	if c.act(w, r, a, &p, "DELETE", path, nil, "Ended; the user's apps were notified.") {
		c.userPage(w, r, a, id, p)
	}
}

// --- keys and audit -----------------------------------------------------------

func (c *Console) keysPage(w http.ResponseWriter, r *http.Request, a admin, p page) {
	var list struct{ Keys []keys.KeyInfo }
	if _, err := c.call(r.Context(), a, "GET", "/keys", nil, &list); err != nil {
		c.fail(w, r, err)
		return
	}
	p.Data = list
	c.render(w, r, http.StatusOK, "keys", p)
}

func (c *Console) keys(w http.ResponseWriter, r *http.Request, a admin) {
	c.keysPage(w, r, a, c.base("Signing keys", "keys", a))
}

func (c *Console) rotateKeys(w http.ResponseWriter, r *http.Request, a admin) {
	p := c.base("Signing keys", "keys", a)
	if c.act(w, r, a, &p, "POST", "/keys/rotate", nil, "Rotated: the former next keys now sign.") {
		c.keysPage(w, r, a, p)
	}
}

func (c *Console) audit(w http.ResponseWriter, r *http.Request, a admin) {
	in := r.URL.Query()
	q := url.Values{}
	for _, k := range []string{"type", "user_id", "since", "cursor"} {
		if v := strings.TrimSpace(in.Get(k)); v != "" {
			q.Set(k, v)
		}
	}
	q.Set("limit", "50")
	var res struct {
		Events     []storage.Event `json:"events"`
		NextCursor string          `json:"next_cursor"`
	}
	p := c.base("Audit log", "audit", a)
	prob, err := c.call(r.Context(), a, "GET", "/audit/events?"+q.Encode(), nil, &res)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	if prob != nil {
		showProblem(&p, prob)
	}
	next := ""
	if res.NextCursor != "" {
		q.Set("cursor", res.NextCursor)
		q.Del("limit")
		next = "/admin/audit?" + q.Encode()
	}
	p.Data = struct {
		Events                    []storage.Event
		Type, UserID, Since, Next string
	}{res.Events, in.Get("type"), in.Get("user_id"), in.Get("since"), next}
	c.render(w, r, http.StatusOK, "audit", p)
}
