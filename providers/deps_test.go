package providers

import (
	"net/http"
	"testing"
)

type nopSealer struct{}

func (nopSealer) Seal(p, _ []byte) (string, error)        { return string(p), nil }
func (nopSealer) Open(s string, _ []byte) ([]byte, error) { return []byte(s), nil }

func TestDepsPrepare(t *testing.T) {
	hc := &http.Client{}
	tests := []struct {
		name      string
		deps      Deps
		info      Info
		sealerFor string
		wantErr   string
		wantName  string
	}{
		{"ok, name defaults to id", Deps{HTTPClient: hc, Sealer: nopSealer{}}, Info{ID: "gh"}, "tokens", "", "gh"},
		{"ok, name kept", Deps{HTTPClient: hc}, Info{ID: "gh", Name: "GitHub"}, "", "", "GitHub"},
		{"no id", Deps{HTTPClient: hc}, Info{}, "", "x: connector id is empty", ""},
		{"no client", Deps{}, Info{ID: "a"}, "", "x: Deps.HTTPClient is nil (the hardened client is required)", ""},
		{"no sealer when needed", Deps{HTTPClient: hc}, Info{ID: "a"}, "upstream refresh tokens", "x: Deps.Sealer is nil (needed to keep upstream refresh tokens)", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			info := tc.info
			clk, log, err := tc.deps.Prepare("x", &info, tc.sealerFor)
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || clk == nil || log == nil || info.Name != tc.wantName {
				t.Fatalf("err %v clock %v logger %v name %q, want name %q", err, clk, log, info.Name, tc.wantName)
			}
		})
	}
}
