package sms_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/latchkeyid/latchkey/internal/clock"
	"github.com/latchkeyid/latchkey/internal/httpclient"
	"github.com/latchkeyid/latchkey/internal/notify"
	"github.com/latchkeyid/latchkey/internal/notify/sms"
)

func client() *http.Client {
	return httpclient.New(httpclient.Options{AllowedNetworks: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}})
}

var fastRetry = notify.Retry{Attempts: 3, Initial: time.Millisecond}

// twilioServer checks the request exactly as Twilio documents the
// Messages resource and answers with the statuses given, in turn.
func twilioServer(t *testing.T, statuses ...int) (*httptest.Server, *atomic.Int32, *url.Values) {
	t.Helper()
	var calls atomic.Int32
	got := &url.Values{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := int(calls.Add(1))
		if r.Method != http.MethodPost || r.URL.Path != "/2010-04-01/Accounts/AC123/Messages.json" {
			t.Errorf("%s %s", r.Method, r.URL.Path)
		}
		if ct := r.Header.Get("Content-Type"); ct != "application/x-www-form-urlencoded" {
			t.Errorf("content type %q", ct)
		}
		if u, p, ok := r.BasicAuth(); !ok || u != "AC123" || p != "tok" {
			t.Errorf("basic auth %q %q %v", u, p, ok)
		}
		if err := r.ParseForm(); err != nil {
			t.Error(err)
		}
		*got = r.PostForm
		st := statuses[min(n, len(statuses))-1]
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(st)
		if st == http.StatusCreated {
			io.WriteString(w, `{"sid":"SM1","status":"queued"}`)
		} else {
			io.WriteString(w, `{"code":21211,"message":"The 'To' number +15005550001 is not valid.","status":400}`)
		}
	}))
	t.Cleanup(srv.Close)
	return srv, &calls, got
}

func TestTwilio(t *testing.T) {
	tests := []struct {
		name      string
		statuses  []int
		service   bool
		wantCalls int32
		wantErr   string
	}{
		{name: "created", statuses: []int{201}, wantCalls: 1},
		{name: "messaging service", statuses: []int{201}, service: true, wantCalls: 1},
		{name: "retried after 503 and 429", statuses: []int{503, 429, 201}, wantCalls: 3},
		{name: "400 is not retried", statuses: []int{400}, wantCalls: 1, wantErr: "notify: send failed: sms via twilio: twilio answered 400"},
		{name: "gives up after 3", statuses: []int{500}, wantCalls: 3, wantErr: "notify: send failed: sms via twilio: twilio answered 500"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv, calls, form := twilioServer(t, tc.statuses...)
			o := sms.TwilioOptions{BaseURL: srv.URL, AccountSID: "AC123", AuthToken: "tok", HTTPClient: client(), Retry: fastRetry}
			if tc.service {
				o.MessagingServiceSID = "MG9"
			} else {
				o.From = "+15005550006"
			}
			s, err := sms.NewTwilio(o)
			if err != nil {
				t.Fatal(err)
			}
			err = s.Send(context.Background(), sms.Message{To: "+4915112345678", Body: "Your code is 123456"})
			if got := calls.Load(); got != tc.wantCalls {
				t.Errorf("calls = %d, want %d", got, tc.wantCalls)
			}
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr || !errors.Is(err, notify.ErrSendFailed) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := url.Values{"To": {"+4915112345678"}, "Body": {"Your code is 123456"}}
			if tc.service {
				want.Set("MessagingServiceSid", "MG9")
			} else {
				want.Set("From", "+15005550006")
			}
			if form.Encode() != want.Encode() {
				t.Errorf("form = %v, want %v", form, want)
			}
		})
	}
}

func TestNewTwilioErrors(t *testing.T) {
	_, err := sms.NewTwilio(sms.TwilioOptions{BaseURL: "ftp://x", From: "+1", MessagingServiceSID: "MG"})
	want := "sms: twilio: accountSID: required\nauthToken: required\nfrom or messagingServiceSID: exactly one is required\nHTTPClient: required\nbaseURL \"ftp://x\": not an http(s) URL"
	if err == nil || err.Error() != want {
		t.Fatalf("err = %v, want %q", err, want)
	}
}

// The Standard Webhooks specification's test vector, also what the
// reference npm package standardwebhooks@1 signs for these inputs.
func TestSignVector(t *testing.T) {
	key, err := sms.DecodeSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	if err != nil {
		t.Fatal(err)
	}
	got := sms.Sign(key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, []byte(`{"test": 2432232314}`))
	if want := "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="; got != want {
		t.Fatalf("signature %q, want %q", got, want)
	}
}

func TestDecodeSecret(t *testing.T) {
	for _, tc := range []struct{ in, err string }{
		{"MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", `want "whsec_" followed by base64`},
		{"whsec_!!", `want "whsec_" followed by base64`},
		{"whsec_c2hvcnQ=", "5 bytes; want at least 24"},
	} {
		if _, err := sms.DecodeSecret(tc.in); err == nil || err.Error() != tc.err {
			t.Errorf("DecodeSecret(%q) = %v, want %q", tc.in, err, tc.err)
		}
	}
}

func TestWebhook(t *testing.T) {
	const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	key, _ := sms.DecodeSecret(secret)
	clk := clock.NewFake(time.Unix(1700000000, 0))
	var calls atomic.Int32
	var ids []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := calls.Add(1)
		body, _ := io.ReadAll(r.Body)
		id, ts := r.Header.Get("webhook-id"), r.Header.Get("webhook-timestamp")
		ids = append(ids, id)
		sec, _ := strconv.ParseInt(ts, 10, 64)
		if sec != 1700000000 || r.Header.Get("webhook-signature") != sms.Sign(key, id, sec, body) {
			t.Errorf("bad signature headers %v", r.Header)
		}
		var got map[string]string
		if err := json.Unmarshal(body, &got); err != nil || got["type"] != "sms" || got["to"] != "+4915112345678" || got["body"] != "hi" || len(got) != 3 {
			t.Errorf("body %s", body)
		}
		if n == 1 {
			w.WriteHeader(502)
			return
		}
		w.WriteHeader(204)
	}))
	defer srv.Close()
	s, err := sms.NewWebhook(sms.WebhookOptions{URL: srv.URL, Secret: secret, HTTPClient: client(), Retry: fastRetry, Clock: clk, Rand: rand.Reader})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Send(context.Background(), sms.Message{To: "+4915112345678", Body: "hi"}); err != nil {
		t.Fatal(err)
	}
	if calls.Load() != 2 || ids[0] != ids[1] || len(ids[0]) != len("msg_")+22 {
		t.Errorf("calls %d ids %q: want 2 attempts with one id", calls.Load(), ids)
	}
}
