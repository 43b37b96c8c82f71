package web

import (
	"io/fs"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"strings"
	"testing"
	"text/template/parse"

	"github.com/latchkeyid/latchkey/broker"
	"github.com/latchkeyid/latchkey/web/i18n"
)

// pageMessageIDs are ids the Go code hands to {{t .Title}}, {{t .Error}}
// and {{t .Message}}: page titles, the common error page titles and
// messages, the consent page's scope descriptions.
var pageMessageIDs = []string{
	"Allow access", "Choose an account", "Confirm your e-mail address", "Forgot your password?", "Link your account",
	"Save your recovery codes", "Set up two-step verification", "Sign in", "Sign out", "Signed out", "Two-step verification",
	"Your account", "Add a security key or passkey", "Temporarily unavailable", "Choose a new password",
	"Server error", "Invalid form", "Invalid request", "Not available", "Form expired", "Try again later", "Not found",
	"Sign-in expired", "Sign-in failed", "Sign in first", "Not signed in", "Unknown application", "Account disabled",
	"Invalid redirect", "Link not valid", "Not the same account", "Nothing to link", "Sign-in not recognised",
	"Sign-out expired", "Sign-out not possible", "You are still signed in",
	"Something went wrong on our side. Please try again.", "Something went wrong on our side.", "The form could not be read.",
	"Please try again in a moment.", "The sign-in request has expired or was already completed. Go back to the application and start again.",
	"The form was not valid for this sign-in. Go back to the application and start again.", "That second factor is not available.",
	"The application that sent you here is no longer registered.", "Sign in through your application first, then open this page again.",
	"There is no account page here.", "The sign-in request is malformed.", "The sign-in request could not be read.",
	"Incorrect username or password.", "The server is busy. Please try again in a moment.",
	"Sign you in", "See your name and username", "See your email address", "See the groups you belong to",
	"Stay signed in when you are away (refresh tokens)",
	// The account page's self-service messages (broker/account_manage.go).
	"For this change, enter your current password; without a password here, sign out and sign in again first.",
	"This is your last way to sign in: set a password or link another service first.", "That item is not on your account.",
	"Enter a name of 1 to 64 characters.", "You were signed out on your other devices.", "The session is ended.",
	"The service is unlinked from your account.", "The second factor is removed.", "The second factor is renamed.", "Your name is saved.", "Enter a name of 1 to 128 characters.",
	"Here are your new recovery codes. They are shown only once; the old ones no longer work.", "You have signed out.",
	"The application no longer has access to your account.",
	// Self-registration (broker/register.go, web/register.go).
	"Create an account", "You cannot create an account here.",
	"Confirm your e-mail address first. We sent a new link to your address: open it, then sign in.",
	"Choose a username of 1 to 64 characters: letters, digits, '.', '_', '-' or '@'.",
	"Enter an e-mail address such as name@example.com.", "The two passwords are not the same.",
	"Password refused: this password appears in a list of leaked passwords; choose another.",
	"Password refused: do not use your username or e-mail address as the password.",
}

// templateMessageIDs parses every template and returns the string
// literals passed to t.
func templateMessageIDs(t *testing.T) []string {
	t.Helper()
	files, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil || len(files) == 0 {
		t.Fatalf("templates: %v %v", files, err)
	}
	seen := map[string]bool{}
	var walk func(n parse.Node)
	walk = func(n parse.Node) {
		switch n := n.(type) {
		case *parse.ListNode:
			if n != nil {
				for _, c := range n.Nodes {
					walk(c)
				}
			}
		case *parse.ActionNode:
			walk(n.Pipe)
		case *parse.PipeNode:
			if n == nil {
				return
			}
			for _, c := range n.Cmds {
				if id, ok := c.Args[0].(*parse.IdentifierNode); ok && id.Ident == "t" && len(c.Args) > 1 {
					if s, ok := c.Args[1].(*parse.StringNode); ok {
						seen[s.Text] = true
					}
				}
				for _, a := range c.Args {
					walk(a)
				}
			}
		case *parse.IfNode:
			walk(n.Pipe)
			walk(n.List)
			walk(n.ElseList)
		case *parse.RangeNode:
			walk(n.Pipe)
			walk(n.List)
			walk(n.ElseList)
		case *parse.WithNode:
			walk(n.Pipe)
			walk(n.List)
			walk(n.ElseList)
		case *parse.TemplateNode:
			walk(n.Pipe)
		}
	}
	for _, f := range files {
		src, err := fs.ReadFile(templateFS, f)
		if err != nil {
			t.Fatal(err)
		}
		trees, err := parse.Parse(f, string(src), "{{", "}}", placeholderFuncs, map[string]any{"eq": 1, "ne": 1, "len": 1, "gt": 1, "and": 1, "not": 1, "index": 1})
		if err != nil {
			t.Fatalf("parse %s: %v", f, err)
		}
		for _, tr := range trees {
			walk(tr.Root)
		}
	}
	ids := make([]string, 0, len(seen))
	for id := range seen {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

func TestEveryMessageInEveryLanguage(t *testing.T) {
	c, err := i18n.New()
	if err != nil {
		t.Fatal(err)
	}
	ids := templateMessageIDs(t)
	if len(ids) < 80 {
		t.Fatalf("found only %d message ids in the templates", len(ids))
	}
	ids = append(ids, pageMessageIDs...)
	ids = append(ids, broker.AccountEventTitles()...)
	ids = append(ids, "Local account", msgTooMany, "Changing the e-mail address is not available here.")
	ids = append(ids, accountFactorMessageIDs...)
	ids = append(ids, accountLinkMessageIDs...)
	for _, l := range i18n.Languages {
		for _, id := range ids {
			if !c.Lookup(l, id) {
				t.Errorf("%s: no message %q", l.Code, id)
			}
		}
	}
	for _, sc := range scopeDescriptions {
		if !slices.Contains(pageMessageIDs, sc) {
			t.Errorf("scope description %q is not in pageMessageIDs", sc)
		}
	}
}

func TestPickLanguage(t *testing.T) {
	c, err := i18n.New()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, override string
		uiLocales      []string
		cookie, accept string
		want           string
	}{
		{"nothing", "", nil, "", "", "en"},
		{"accept-language", "", nil, "", "de-DE,de;q=0.9,en;q=0.5", "de"},
		{"accept-language quality order", "", nil, "", "xx;q=1, ja;q=0.8, fr;q=0.5", "ja"},
		{"cookie beats accept-language", "", nil, "fr", "de", "fr"},
		{"ui_locales beats cookie", "", []string{"es"}, "fr", "de", "es"},
		{"ui_locales region matches", "", []string{"fr-CA"}, "", "", "fr"},
		{"first supported ui_locale", "", []string{"xx", "tlh", "ja-JP", "de"}, "", "", "ja"},
		{"unknown ui_locales fall through to cookie", "", []string{"xx"}, "es", "", "es"},
		{"switcher during the request beats ui_locales", "de", []string{"es"}, "", "", "de"},
		{"unknown cookie ignored", "", nil, "xx", "ja", "ja"},
		{"unknown everything falls back to en", "", []string{"zz"}, "qq", "sv, pl;q=0.5", "en"},
		{"malformed accept-language", "", nil, "", ";;;q=x", "en"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := c.Pick(tc.override, tc.uiLocales, tc.cookie, tc.accept).Code; got != tc.want {
				t.Errorf("Pick = %s, want %s", got, tc.want)
			}
		})
	}
}

func TestLoginPageInEveryLanguage(t *testing.T) {
	want := map[string]string{"en": "Password", "de": "Passwort", "fr": "Mot de passe", "es": "Contraseña", "ja": "パスワード"}
	s := &Server{}
	var err error
	if s.i18n, err = i18n.New(); err != nil {
		t.Fatal(err)
	}
	p, err := (&Server{}).parsePages()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range i18n.Languages {
		t.Run(l.Code, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/login?req=r1", nil)
			r.Header.Set("Accept-Language", l.Code)
			w := httptest.NewRecorder()
			s.render(w, r, http.StatusOK, p.login, pageCSP, map[string]any{"Title": "Sign in", "View": struct {
				RequestID, CSRF, ClientName, LoginHint string
				Password, ForgotPassword, Register     bool
				Upstreams, PasswordConnectors          []struct{ ID, Name string }
				PasskeyOptions                         string
			}{RequestID: "r1", ClientName: "<App>", Password: true, PasswordConnectors: []struct{ ID, Name string }{{"local", "Local"}}}})
			page := w.Body.String()
			if w.Code != 200 || !strings.Contains(page, `<html lang="`+l.Code+`">`) || !strings.Contains(page, ">"+want[l.Code]+"</label>") {
				t.Fatalf("status %d, page:\n%s", w.Code, page)
			}
			if !strings.Contains(page, "&lt;App&gt;") || strings.Contains(page, "<App>") {
				t.Errorf("client name not escaped:\n%s", page)
			}
			if got := w.Header().Get("Content-Language"); got != l.Code {
				t.Errorf("Content-Language = %q", got)
			}
			if !strings.Contains(page, `href="/language?lang=de&amp;return=%2Flogin%3Freq%3Dr1"`) {
				t.Errorf("no language switcher:\n%s", page)
			}
		})
	}
}

func TestSwitchLanguage(t *testing.T) {
	s := &Server{}
	for _, tc := range []struct {
		name, query          string
		wantLocation, cookie string
	}{
		{"page of a request", "lang=de&return=%2Flogin%3Freq%3Dabc", "/login?req=abc", "de:abc"},
		{"plain page", "lang=ja&return=%2Faccount", "/account", "ja"},
		{"unknown language sets nothing", "lang=xx&return=%2Faccount", "/account", ""},
		{"other host refused", "lang=fr&return=%2F%2Fevil.example%2F", "/account", "fr"},
		{"backslash host refused", "lang=fr&return=%2F%5Cevil.example", "/account", "fr"},
		{"absolute URL refused", "lang=es&return=https%3A%2F%2Fevil.example%2F", "/account", "es"},
		// Browsers drop tabs and newlines from a URL and read "\" as
		// "/": each of these would become //evil.example.
		{"tab then host refused", "lang=fr&return=%2F%09%2Fevil.example", "/account", "fr"},
		{"tab then backslash refused", "lang=fr&return=%2F%09%5Cevil.example", "/account", "fr"},
		{"other control character refused", "lang=fr&return=%2F%0B%2Fevil.example", "/account", "fr"},
		{"backslashes later refused", "lang=fr&return=%2F.%5C%5Cevil.example", "/account", "fr"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			s.switchLanguage(w, httptest.NewRequest(http.MethodGet, "/language?"+tc.query, nil))
			if w.Code != http.StatusSeeOther || w.Header().Get("Location") != tc.wantLocation {
				t.Fatalf("status %d, Location %q", w.Code, w.Header().Get("Location"))
			}
			var got string
			for _, c := range w.Result().Cookies() {
				if c.Name == langCookie {
					got = c.Value
				}
			}
			if got != tc.cookie {
				t.Errorf("cookie %q, want %q", got, tc.cookie)
			}
		})
	}
}

func TestReturnPath(t *testing.T) {
	for _, tc := range []struct {
		method, target, reqID, want string
	}{
		{"GET", "/login?req=r1", "r1", "/login?req=r1"},
		{"GET", "/mfa/otp?req=r1&factor=sms", "r1", "/mfa/otp?req=r1&factor=sms"},
		{"POST", "/login", "r1", "/login?req=r1"},
		{"POST", "/mfa/otp/enroll/confirm", "r&1", "/mfa/otp/enroll?req=r%261"},
		{"POST", "/account/password", "", "/account"},
		{"POST", "/logout/confirm", "", ""},
		{"GET", "/logout?client_id=app", "", "/logout?client_id=app"},
		{"GET", "/callback/google?code=secret", "", ""},
		{"GET", "/nowhere", "", ""},
	} {
		if got := returnPath(httptest.NewRequest(tc.method, tc.target, nil), tc.reqID); got != tc.want {
			t.Errorf("%s %s: %q, want %q", tc.method, tc.target, got, tc.want)
		}
	}
}
