package upstream_test

import (
	"strings"
	"testing"
	"time"

	"github.com/latchkeyid/latchkey/internal/secretbox"
	"github.com/latchkeyid/latchkey/providers/upstream"
)

func TestSealAccessToken(t *testing.T) {
	ring, err := secretbox.NewKeyring([]secretbox.Key{{ID: "k", Secret: make([]byte, secretbox.KeySize)}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	exp := time.Unix(1767225600, 0)
	data, err := upstream.SealAccessToken(ring, "github", "583231", "gho_secret-token", exp)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(data), "gho_secret-token") {
		t.Fatalf("the access token is in clear in %s", data)
	}
	tests := []struct {
		name, connector, subject string
		data                     []byte
		wantToken                string
		wantExpiry               time.Time
		wantErr                  string
	}{
		{name: "round trip", connector: "github", subject: "583231", data: data, wantToken: "gho_secret-token", wantExpiry: exp},
		{name: "another subject", connector: "github", subject: "1", data: data, wantErr: "open upstream access token: "},
		{name: "another connector", connector: "ghe", subject: "583231", data: data, wantErr: "open upstream access token: "},
		{name: "no data", connector: "github", subject: "583231"},
		{name: "a refresh token's data holds no access token", connector: "github", subject: "583231",
			data: mustSealRefresh(t, ring)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok, gotExp, err := upstream.OpenAccessToken(ring, tt.connector, tt.subject, tt.data)
			if tt.wantErr != "" {
				if err == nil || !strings.HasPrefix(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want prefix %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || tok != tt.wantToken || !gotExp.Equal(tt.wantExpiry) {
				t.Fatalf("got %q, %v, %v; want %q, %v", tok, gotExp, err, tt.wantToken, tt.wantExpiry)
			}
		})
	}
	if d, err := upstream.SealAccessToken(ring, "github", "583231", "", exp); d != nil || err != nil {
		t.Fatalf("an empty token sealed to %q, %v; want nil", d, err)
	}
	d, _ := upstream.SealAccessToken(ring, "github", "583231", "t", time.Time{})
	if _, e, err := upstream.OpenAccessToken(ring, "github", "583231", d); err != nil || !e.IsZero() {
		t.Fatalf("unknown expiry came back as %v, %v", e, err)
	}
}

func mustSealRefresh(t *testing.T, ring *secretbox.Keyring) []byte {
	t.Helper()
	d, err := upstream.SealRefreshToken(ring, "github", "583231", "ghr_refresh")
	if err != nil {
		t.Fatal(err)
	}
	return d
}
