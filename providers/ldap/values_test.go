package ldap_test

import (
	"testing"

	"github.com/latchkeyid/latchkey/providers/ldap"
)

func TestValueString(t *testing.T) {
	guid := []byte{0xe0, 0x04, 0x25, 0x3f, 0x89, 0x4f, 0xd3, 0x11, 0x9a, 0x0c, 0x03, 0x05, 0xe8, 0x2c, 0x33, 0x01}
	sid := []byte{1, 5, 0, 0, 0, 0, 0, 5, 21, 0, 0, 0, 0x15, 0xcd, 0x5b, 0x07, 0x26, 0x4e, 0x0b, 0x2c, 0x1d, 0x6c, 0x35, 0x3f, 0xf4, 0x01, 0, 0}
	cases := []struct {
		name, attr string
		v          []byte
		want       string
	}{
		{"text", "uid", []byte("alice"), "alice"},
		{"unicode text", "cn", []byte("Zoë Ångström"), "Zoë Ångström"},
		{"objectGUID as AD shows it", "objectGUID", guid, "3f2504e0-4f89-11d3-9a0c-0305e82c3301"},
		{"objectGUID attribute name in any case", "objectguid", guid, "3f2504e0-4f89-11d3-9a0c-0305e82c3301"},
		{"objectGUID of the wrong length is base64", "objectGUID", guid[:15], "4AQlP4lP0xGaDAMF6Cwz"},
		{"objectSid", "objectSid", sid, "S-1-5-21-123456789-738938406-1060465693-500"},
		{"malformed objectSid is base64", "objectSid", sid[:10], "AQUAAAAAAAUVAA=="},
		{"other binary is base64", "jpegPhoto", []byte{0xff, 0xd8, 0xff}, "/9j/"},
		{"control characters are base64", "description", []byte("a\x00b"), "YQBi"},
		{"tabs and newlines are text", "description", []byte("a\tb\nc"), "a\tb\nc"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := ldap.ValueString(tc.attr, tc.v); got != tc.want {
				t.Fatalf("ValueString(%q) = %q, want %q", tc.attr, got, tc.want)
			}
		})
	}
}
