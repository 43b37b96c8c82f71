package providers_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/url"
	"reflect"
	"strings"
	"testing"

	"github.com/latchkeyid/latchkey/providers"
)

type inner struct {
	Expr   string `json:"expr"`
	Reason string `json:"reason"`
}

type embedded struct {
	Allow []string `json:"allow"`
}

type sample struct {
	Issuer string            `json:"issuer"`
	Scopes []string          `json:"scopes"`
	Trust  bool              `json:"trustEmail"`
	Port   int               `json:"port"`
	Extra  map[string]string `json:"extraParams"`
	Rules  []inner           `json:"deny"`
	PKCE   *bool             `json:"pkce"`
	embedded
}

func TestDecodeConfig(t *testing.T) {
	yes := true
	tests := []struct {
		name  string
		raw   string
		want  sample
		probs []providers.FieldProblem
	}{
		{
			name: "everything",
			raw: `{"issuer":"https://x","scopes":["openid","email"],"trustEmail":true,"port":8,"extraParams":{"a":"b"},
				"deny":[{"expr":"true","reason":"r"}],"pkce":true,"allow":["x"]}`,
			want: sample{Issuer: "https://x", Scopes: []string{"openid", "email"}, Trust: true, Port: 8,
				Extra: map[string]string{"a": "b"}, Rules: []inner{{Expr: "true", Reason: "r"}}, PKCE: &yes,
				embedded: embedded{Allow: []string{"x"}}},
		},
		{name: "empty", raw: ``, want: sample{}},
		{name: "nulls", raw: `{"issuer":null,"scopes":null}`, want: sample{}},
		{
			name: "every problem with its path",
			raw:  `{"issuer":1,"scopes":"openid","trustEmail":"yes","port":1.5,"extraParams":{"a":1},"deny":[{"expr":"x","resaon":"r"},7],"Issuer":"x","clientId":"y"}`,
			want: sample{Extra: map[string]string{"a": ""}, Rules: []inner{{Expr: "x"}, {}}},
			probs: []providers.FieldProblem{
				{Path: "Issuer", Message: "unknown key"},
				{Path: "clientId", Message: "unknown key"},
				{Path: "deny[0].resaon", Message: "unknown key"},
				{Path: "deny[1]", Message: "must be an object"},
				{Path: "extraParams.a", Message: "must be a string"},
				{Path: "issuer", Message: "must be a string"},
				{Path: "port", Message: "must be an integer"},
				{Path: "scopes", Message: "must be a list"},
				{Path: "trustEmail", Message: "must be true or false"},
			},
		},
		{name: "not an object", raw: `[1]`, probs: []providers.FieldProblem{{Path: "", Message: "must be an object"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got sample
			probs := providers.DecodeConfig(json.RawMessage(tt.raw), &got)
			if !reflect.DeepEqual(probs, tt.probs) {
				t.Fatalf("problems:\n got %v\nwant %v", probs, tt.probs)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("decoded:\n got %#v\nwant %#v", got, tt.want)
			}
		})
	}
}

func TestRequestsKeepSecretsOutOfLogs(t *testing.T) {
	lr := providers.LoginRequest{CallbackURL: "https://l.example/cb", State: "STATE-SECRET", Nonce: "NONCE-SECRET", CodeChallenge: "CHALLENGE", LoginHint: "a@example.com", Prompt: "login"}
	cr := providers.CallbackRequest{CallbackURL: "https://l.example/cb", Query: url.Values{"code": {"CODE-SECRET"}, "state": {"STATE-SECRET"}},
		State: "STATE-SECRET", Nonce: "NONCE-SECRET", CodeVerifier: "VERIFIER-SECRET"}
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, nil))
	log.Info("x", "login", lr, "callback", cr)
	out := buf.String() + fmt.Sprintf("%v %+v %#v %v %+v %#v", lr, lr, lr, cr, cr, cr)
	for _, s := range []string{"SECRET", "CHALLENGE", "a@example.com"} {
		if strings.Contains(out, s) {
			t.Fatalf("%q leaked: %s", s, out)
		}
	}
	if want := `"callback":{"callback_url":"https://l.example/cb","params":["code","state"]}`; !strings.Contains(buf.String(), want) {
		t.Fatalf("log %s lacks %s", buf.String(), want)
	}
}
