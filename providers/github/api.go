package github

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"

	"github.com/latchkeyid/latchkey/providers/upstream"
)

// perPage is the page size asked of list endpoints (GitHub's maximum).
const perPage = 100

// MaxPages bounds how many pages of organizations or teams are read (100
// each); memberships past that are ignored, with a warning.
const MaxPages = 10

// apiVersion is the REST API version the connector speaks.
const apiVersion = "2022-11-28"

// errTokenRefused: the API answered 401 Bad credentials to the access
// token (revoked, expired, or the user withdrew the app's authorization).
var errTokenRefused = errors.New("GitHub refused the access token")

// APIError is an error answer of GitHub's REST API, e.g. HTTP 401 with
// {"message":"Bad credentials","documentation_url":...}.
type APIError struct {
	// Endpoint is the path asked for, without the query ("/user/orgs").
	Endpoint string
	Status   int
	// Message is GitHub's message, clipped.
	Message string
	// RateLimited says GitHub refused for the rate limit (403 or 429 with
	// X-RateLimit-Remaining: 0 or Retry-After).
	RateLimited bool
}

func (e *APIError) Error() string {
	msg := fmt.Sprintf("GitHub API %s answered HTTP %d", e.Endpoint, e.Status)
	if e.RateLimited {
		msg += " (rate limited)"
	}
	if e.Message != "" {
		msg += ": " + e.Message
	}
	return msg
}

// Unwrap makes errors.Is(err, errTokenRefused) true for a 401.
func (e *APIError) Unwrap() error {
	if e.Status == http.StatusUnauthorized {
		return errTokenRefused
	}
	return nil
}

// notGranted reports whether err is a 403 or 404 that is not a rate
// limit: the token lacks the scope or permission for the endpoint.
func notGranted(err error) bool {
	var ae *APIError
	return errors.As(err, &ae) && !ae.RateLimited &&
		(ae.Status == http.StatusForbidden || ae.Status == http.StatusNotFound)
}

// get reads one API document at target (an absolute URL on the API) into
// out and returns the next page's URL from the Link header ("" when
// none).
func (c *Connector) get(ctx context.Context, token, target string, out any) (string, error) {
	u, err := url.Parse(target)
	if err != nil {
		return "", fmt.Errorf("github: API URL: %w", err)
	}
	endpoint := strings.TrimPrefix(u.Path, c.apiPath)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return "", fmt.Errorf("github: API request: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Accept", "application/vnd.github+json")
	req.Header.Set("X-GitHub-Api-Version", apiVersion)
	resp, err := c.Client.HTTP.Do(req)
	if err != nil {
		return "", c.Client.Unavailable(fmt.Errorf("GitHub API %s: %w", endpoint, err))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		ae := &APIError{Endpoint: endpoint, Status: resp.StatusCode, Message: errorMessage(resp.Body)}
		ae.RateLimited = resp.StatusCode == http.StatusTooManyRequests ||
			resp.StatusCode == http.StatusForbidden &&
				(resp.Header.Get("X-RateLimit-Remaining") == "0" || resp.Header.Get("Retry-After") != "")
		if ae.RateLimited || resp.StatusCode >= 500 {
			return "", c.Client.Unavailable(ae)
		}
		return "", ae
	}
	dec := json.NewDecoder(resp.Body)
	dec.UseNumber()
	if err := dec.Decode(out); err != nil {
		if upstream.IsUnavailable(err) {
			return "", c.Client.Unavailable(fmt.Errorf("GitHub API %s: read: %w", endpoint, err))
		}
		return "", fmt.Errorf("github: GitHub API %s: decode: %w", endpoint, err)
	}
	next := NextLink(resp.Header.Get("Link"))
	if next != "" {
		nu, err := u.Parse(next)
		if err != nil || nu.Scheme != u.Scheme || nu.Host != u.Host || !strings.HasPrefix(nu.Path, c.apiPath+"/") {
			return "", fmt.Errorf("github: GitHub API %s: the next page link leaves the API", endpoint)
		}
		next = nu.String()
	}
	return next, nil
}

// errorMessage reads GitHub's {"message": ...} from an error body.
func errorMessage(body io.Reader) string {
	var e struct {
		Message string `json:"message"`
	}
	if err := json.NewDecoder(io.LimitReader(body, 64<<10)).Decode(&e); err != nil {
		return ""
	}
	return upstream.Clip(e.Message, 200)
}

// listAll reads every page of a list endpoint (path below the API root),
// up to MaxPages.
func listAll[T any](ctx context.Context, c *Connector, token, path string) ([]T, error) {
	target := c.cfg.APIURL + path + "?per_page=" + fmt.Sprint(perPage)
	var all []T
	for page := 0; target != ""; page++ {
		if page == MaxPages {
			c.Log.WarnContext(ctx, "github: more pages than read; the rest of the list is ignored",
				slog.String("connector", c.Info.ID), slog.String("endpoint", path), slog.Int("pages", MaxPages))
			break
		}
		var items []T
		next, err := c.get(ctx, token, target, &items)
		if err != nil {
			return nil, err
		}
		all = append(all, items...)
		target = next
	}
	return all, nil
}

// NextLink returns the target of the rel="next" link of an RFC 8288 Link
// header value, or "".
func NextLink(h string) string {
	for {
		h = strings.TrimLeft(h, " \t,")
		if !strings.HasPrefix(h, "<") {
			return ""
		}
		end := strings.IndexByte(h, '>')
		if end < 0 {
			return ""
		}
		target, rest := h[1:end], h[end+1:]
		params := rest
		if i := strings.IndexByte(rest, ','); i >= 0 {
			params, rest = rest[:i], rest[i+1:]
		} else {
			rest = ""
		}
		for _, p := range strings.Split(params, ";") {
			k, v, _ := strings.Cut(strings.TrimSpace(p), "=")
			if !strings.EqualFold(strings.TrimSpace(k), "rel") {
				continue
			}
			for _, rel := range strings.Fields(strings.Trim(strings.TrimSpace(v), `"`)) {
				if strings.EqualFold(rel, "next") {
					return target
				}
			}
		}
		h = rest
	}
}

// email is an entry of /user/emails.
type email struct {
	Email    string `json:"email"`
	Primary  bool   `json:"primary"`
	Verified bool   `json:"verified"`
}

// org is an entry of /user/orgs.
type org struct {
	Login string `json:"login"`
}

// team is an entry of /user/teams.
type team struct {
	Slug         string `json:"slug"`
	Organization struct {
		Login string `json:"login"`
	} `json:"organization"`
}

// profile is what the API says of the user.
type profile struct {
	user   map[string]any
	emails []email
	orgs   []string
	teams  [][2]string // org, slug
	// emailsRead says /user/emails answered (the token may lack
	// user:email).
	emailsRead bool
}

// fetch reads the user, their email addresses, organizations and teams.
// A 401 is errTokenRefused (wrapped); a 403 or 404 of the emails, orgs
// or teams endpoint means the token lacks the scope, and that list stays
// empty.
func (c *Connector) fetch(ctx context.Context, token string) (*profile, error) {
	p := &profile{}
	if _, err := c.get(ctx, token, c.cfg.APIURL+"/user", &p.user); err != nil {
		return nil, err
	}
	if p.user == nil {
		return nil, errors.New("github: GitHub API /user: not a JSON object")
	}
	emails, err := listAll[email](ctx, c, token, "/user/emails")
	switch {
	case notGranted(err):
		c.Log.WarnContext(ctx, "github: the token may not read email addresses (scope user:email); using the public email, unverified",
			slog.String("connector", c.Info.ID), slog.String("error", err.Error()))
	case err != nil:
		return nil, err
	default:
		p.emails, p.emailsRead = emails, true
	}
	orgs, err := listAll[org](ctx, c, token, "/user/orgs")
	switch {
	case notGranted(err):
		c.Log.WarnContext(ctx, "github: the token may not list organizations (scope read:org)",
			slog.String("connector", c.Info.ID), slog.String("error", err.Error()))
	case err != nil:
		return nil, err
	}
	for _, o := range orgs {
		if o.Login != "" {
			p.orgs = append(p.orgs, o.Login)
		}
	}
	teams, err := listAll[team](ctx, c, token, "/user/teams")
	switch {
	case notGranted(err):
		c.Log.WarnContext(ctx, "github: the token may not list teams (scope read:org)",
			slog.String("connector", c.Info.ID), slog.String("error", err.Error()))
	case err != nil:
		return nil, err
	}
	for _, t := range teams {
		if t.Slug != "" && t.Organization.Login != "" {
			p.teams = append(p.teams, [2]string{t.Organization.Login, t.Slug})
		}
	}
	return p, nil
}
