package notify_test

import (
	"context"
	"testing"
	"time"

	"github.com/latchkeyid/latchkey/internal/notify"
)

// upper is a translator that marks the language it was asked for.
type upper struct{}

func (upper) Translate(lang, id string, data map[string]any) string {
	return lang + ":" + notify.English(id, data)
}

func TestDuration(t *testing.T) {
	for _, tc := range []struct {
		d    time.Duration
		want string
	}{
		{0, "1 minute"}, {20 * time.Second, "1 minute"}, {time.Minute, "1 minute"}, {5 * time.Minute, "5 minutes"},
		{time.Hour, "1 hour"}, {90 * time.Minute, "90 minutes"}, {2 * time.Hour, "2 hours"}, {24 * time.Hour, "24 hours"},
	} {
		if got := notify.Duration(nil, "", tc.d); got != tc.want {
			t.Errorf("Duration(%s) = %q, want %q", tc.d, got, tc.want)
		}
	}
	if got := notify.Duration(upper{}, "de", 24*time.Hour); got != "de:24 hours" {
		t.Errorf("translated: %q", got)
	}
}

func TestEnglish(t *testing.T) {
	for _, tc := range []struct{ id, want string }{
		{"plain", "plain"},
		{"{{.Code}} is your {{.Product}} code.", "123 is your L code."},
		{"{{.Missing}} stays empty", "<no value> stays empty"},
		{"{{broken", "{{broken"},
	} {
		if got := notify.English(tc.id, map[string]any{"Code": "123", "Product": "L"}); got != tc.want {
			t.Errorf("English(%q) = %q, want %q", tc.id, got, tc.want)
		}
	}
}

func TestLang(t *testing.T) {
	ctx := context.Background()
	if notify.Lang(ctx) != "" || notify.Lang(notify.WithLang(ctx, "")) != "" {
		t.Fatal("a language from nowhere")
	}
	if got := notify.Lang(notify.WithLang(ctx, "ja")); got != "ja" {
		t.Fatalf("Lang = %q", got)
	}
}
