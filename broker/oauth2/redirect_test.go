package oauth2

import "testing"

func TestMatchRedirectURI(t *testing.T) {
	web := []string{"https://app.example/cb", "https://app.example/cb2?tenant=a"}
	loop := []string{"http://127.0.0.1/cb", "http://[::1]:8080/cb", "http://localhost/cb?x=1"}
	tests := []struct {
		name       string
		registered []string
		requested  string
		native     bool
		want       bool
	}{
		{"exact", web, "https://app.example/cb", false, true},
		{"exact second", web, "https://app.example/cb2?tenant=a", false, true},
		{"exact native", web, "https://app.example/cb", true, true},
		{"other host", web, "https://evil.example/cb", false, false},
		{"subdomain", web, "https://app.example.evil.example/cb", false, false},
		{"dot-dot", web, "https://app.example/cb/../admin", false, false},
		{"extra query", web, "https://app.example/cb?x=1", false, false},
		{"extra query param", web, "https://app.example/cb2?tenant=a&x=1", false, false},
		{"reordered query", []string{"https://app.example/cb?a=1&b=2"}, "https://app.example/cb?b=2&a=1", false, false},
		{"userinfo", web, "https://evil@app.example/cb", false, false},
		{"trailing slash", web, "https://app.example/cb/", false, false},
		{"path case", web, "https://app.example/CB", false, false},
		{"host case", web, "https://APP.example/cb", false, false},
		{"scheme case", web, "HTTPS://app.example/cb", false, false},
		{"default port spelled", web, "https://app.example:443/cb", false, false},
		{"port change web", web, "https://app.example:8443/cb", false, false},
		{"fragment", web, "https://app.example/cb#x", false, false},
		{"http downgrade", web, "http://app.example/cb", false, false},
		{"percent-encoded path", web, "https://app.example/%63b", false, false},
		{"empty", web, "", false, false},
		{"nothing registered", nil, "https://app.example/cb", false, false},

		{"loopback v4 port change web", loop, "http://127.0.0.1:51000/cb", false, false},
		{"loopback v4 port change native", loop, "http://127.0.0.1:51000/cb", true, true},
		{"loopback v4 no port native", loop, "http://127.0.0.1/cb", true, true},
		{"loopback v4 max port", loop, "http://127.0.0.1:65535/cb", true, true},
		{"loopback v4 port 0", loop, "http://127.0.0.1:0/cb", true, false},
		{"loopback v4 port too big", loop, "http://127.0.0.1:65536/cb", true, false},
		{"loopback v4 leading zero port", loop, "http://127.0.0.1:08080/cb", true, false},
		{"loopback v4 empty port", loop, "http://127.0.0.1:/cb", true, false},
		{"loopback v4 signed port", loop, "http://127.0.0.1:+80/cb", true, false},
		{"loopback v4 other path", loop, "http://127.0.0.1:5000/cb/", true, false},
		{"loopback v4 extra query", loop, "http://127.0.0.1:5000/cb?x=1", true, false},
		{"loopback v4 fragment", loop, "http://127.0.0.1:5000/cb#f", true, false},
		{"loopback v4 https", loop, "https://127.0.0.1:5000/cb", true, false},
		{"loopback v4 other address", loop, "http://127.0.0.2:5000/cb", true, false},
		{"loopback v4 longer address", loop, "http://127.0.0.10:5000/cb", true, false},
		{"loopback v4 userinfo", loop, "http://x@127.0.0.1:5000/cb", true, false},
		{"loopback v4 as v6", loop, "http://[::1]:5000/cb", true, true}, // [::1] registered too, path /cb
		{"loopback v6 port change native", loop, "http://[::1]:1234/cb", true, true},
		{"loopback v6 no port native", loop, "http://[::1]/cb", true, true},
		{"loopback v6 port change web", loop, "http://[::1]:1234/cb", false, false},
		{"loopback v6 exact web", loop, "http://[::1]:8080/cb", false, true},
		{"loopback v6 long form", loop, "http://[0:0:0:0:0:0:0:1]:1234/cb", true, false},
		{"loopback v6 zone", loop, "http://[::1%25lo]:1234/cb", true, false},
		{"localhost port change native", loop, "http://localhost:3000/cb?x=1", true, true},
		{"localhost other query", loop, "http://localhost:3000/cb?x=2", true, false},
		{"localhost uppercase", loop, "http://LOCALHOST:3000/cb?x=1", true, false},
		{"localhost suffix", loop, "http://localhost.evil.example:3000/cb?x=1", true, false},
		{"localhost for registered ip", []string{"http://127.0.0.1/cb"}, "http://localhost:3000/cb", true, false},
		{"ip for registered localhost", []string{"http://localhost/cb?x=1"}, "http://127.0.0.1:3000/cb?x=1", true, false},
		{"v6 for registered v4 only", []string{"http://127.0.0.1/cb"}, "http://[::1]:3000/cb", true, false},
		{"no path both", []string{"http://127.0.0.1:9000"}, "http://127.0.0.1:41234", true, true},
		{"no path vs slash", []string{"http://127.0.0.1:9000"}, "http://127.0.0.1:41234/", true, false},
		{"non-loopback http native port change", []string{"http://app.example/cb"}, "http://app.example:81/cb", true, false},
		{"custom scheme native exact", []string{"com.example.app:/cb"}, "com.example.app:/cb", true, true},
		{"custom scheme native other path", []string{"com.example.app:/cb"}, "com.example.app:/cb2", true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := MatchRedirectURI(tt.registered, tt.requested, tt.native); got != tt.want {
				t.Fatalf("MatchRedirectURI(%q, %q, %v) = %v, want %v", tt.registered, tt.requested, tt.native, got, tt.want)
			}
		})
	}
}

func TestValidateRedirectURI(t *testing.T) {
	const code = "invalid_redirect_uri"
	bad := func(desc string) wantErr { return wantErr{code, desc, 400} }
	tests := []struct {
		name   string
		raw    string
		native bool
		want   wantErr
	}{
		{"https", "https://app.example/cb", false, wantErr{}},
		{"https with port and query", "https://app.example:8443/cb?tenant=a&x=", false, wantErr{}},
		{"https no path", "https://app.example", false, wantErr{}},
		{"http localhost web", "http://localhost:5555/callback", false, wantErr{}},
		{"http 127.0.0.1 native", "http://127.0.0.1/cb", true, wantErr{}},
		{"http ::1 native", "http://[::1]:8080/cb", true, wantErr{}},
		{"https native claimed", "https://app.example/native", true, wantErr{}},
		{"custom scheme native", "com.example.app:/oauth2redirect", true, wantErr{}},
		{"custom scheme with authority native", "com.example.app://cb", true, wantErr{}},

		{"empty", "", false, bad("redirect URI is empty")},
		{"relative", "/cb", false, bad("redirect URI must be absolute")},
		{"no scheme host", "app.example/cb", false, bad("redirect URI must be absolute")},
		{"fragment", "https://app.example/cb#frag", false, bad("redirect URI must not contain a fragment")},
		{"empty fragment", "https://app.example/cb#", false, bad("redirect URI must not contain a fragment")},
		{"userinfo", "https://user@app.example/cb", false, bad("redirect URI must not contain userinfo")},
		{"userinfo password", "https://user:pw@app.example/cb", false, bad("redirect URI must not contain userinfo")},
		{"dot-dot", "https://app.example/a/../cb", false, bad("redirect URI must not contain . or .. path segments")},
		{"encoded dot-dot", "https://app.example/a/%2e%2E/cb", false, bad("redirect URI must not contain . or .. path segments")},
		{"encoded slash dot-dot", "https://app.example/a%2F..%2Fcb", false, bad("redirect URI must not contain . or .. path segments")},
		{"dot segment", "https://app.example/./cb", false, bad("redirect URI must not contain . or .. path segments")},
		{"trailing dot-dot", "https://app.example/cb/..", false, bad("redirect URI must not contain . or .. path segments")},
		{"dot-dot in custom scheme", "com.example.app:../cb", true, bad("redirect URI must not contain . or .. path segments")},
		{"dots inside a name are fine", "https://app.example/a..b/cb", false, wantErr{}},
		{"backslash", `https://app.example/a\cb`, false, bad("redirect URI must be printable ASCII without spaces or backslashes")},
		{"space", "https://app.example/a cb", false, bad("redirect URI must be printable ASCII without spaces or backslashes")},
		{"non-ASCII", "https://exämple.com/cb", false, bad("redirect URI must be printable ASCII without spaces or backslashes")},
		{"control", "https://app.example/cb\n", false, bad("redirect URI must be printable ASCII without spaces or backslashes")},
		{"bad escape", "https://app.example/%zz", false, bad("redirect URI is not a valid URI")},
		{"bad query escape", "https://app.example/cb?a=%zz", false, bad("redirect URI query is malformed")},
		{"semicolon query", "https://app.example/cb?a=1;b=2", false, bad("redirect URI query is malformed")},
		{"uppercase scheme", "HTTPS://app.example/cb", false, bad("redirect URI scheme must be lowercase")},
		{"port zero", "https://app.example:0/cb", false, bad("redirect URI port is invalid")},
		{"port too big", "https://app.example:70000/cb", false, bad("redirect URI port is invalid")},
		{"empty port", "http://127.0.0.1:/cb", true, bad("redirect URI port is invalid")},
		{"https no host", "https:///cb", false, bad("https redirect URI must have a host")},
		{"http public web", "http://app.example/cb", false, bad("http redirect URI is allowed only on 127.0.0.1, [::1] or localhost")},
		{"http public native", "http://app.example/cb", true, bad("http redirect URI is allowed only on 127.0.0.1, [::1] or localhost")},
		{"http other loopback address", "http://127.0.0.2/cb", true, bad("http redirect URI is allowed only on 127.0.0.1, [::1] or localhost")},
		{"http localhost uppercase", "http://LOCALHOST/cb", true, bad("http redirect URI is allowed only on 127.0.0.1, [::1] or localhost")},
		{"http localhost subdomain", "http://localhost.evil.example/cb", true, bad("http redirect URI is allowed only on 127.0.0.1, [::1] or localhost")},
		{"custom scheme web", "com.example.app:/cb", false, bad("redirect URI of a web client must use https (or http on loopback)")},
		{"custom scheme no dot native", "myapp:/cb", true, bad("private-use URI scheme must contain a dot, like com.example.app")},
		{"javascript web", "javascript:alert(1)", false, bad("redirect URI of a web client must use https (or http on loopback)")},
		{"javascript native", "javascript:alert(1)//", true, bad("private-use URI scheme must contain a dot, like com.example.app")},
		{"data native", "data:text/html,x", true, bad("private-use URI scheme must contain a dot, like com.example.app")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkErr(t, ValidateRedirectURI(tt.raw, tt.native), tt.want)
		})
	}
}
