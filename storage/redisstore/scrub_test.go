package redisstore

import (
	"errors"
	"testing"
)

func TestScrub(t *testing.T) {
	base := errors.New("auth failed for hunter2 at 127.0.0.1:6379")
	tests := []struct {
		name, password, want string
		sameErr              bool
	}{
		{"no password", "", "auth failed for hunter2 at 127.0.0.1:6379", true},
		{"password absent", "other", "auth failed for hunter2 at 127.0.0.1:6379", true},
		{"password present", "hunter2", "auth failed for [redacted] at 127.0.0.1:6379", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := scrub(base, tc.password)
			if got.Error() != tc.want {
				t.Fatalf("scrub = %q, want %q", got, tc.want)
			}
			if (got == base) != tc.sameErr {
				t.Fatalf("scrub returned the original error: %v, want %v", got == base, tc.sameErr)
			}
		})
	}
}
