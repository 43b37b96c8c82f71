package ldap

import (
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// valueString turns an attribute value into a string. Text (valid UTF-8
// without control characters) is kept as it is. Active Directory's binary
// ids get their usual text forms: objectGUID the GUID string
// (e.g. 3f2504e0-4f89-11d3-9a0c-0305e82c3301, the first three fields
// little-endian as AD stores them), objectSid the S-1-5-... form. Any
// other binary value becomes standard base64.
func valueString(attr string, v []byte) string {
	switch {
	case strings.EqualFold(attr, "objectGUID") && len(v) == 16:
		return fmt.Sprintf("%08x-%04x-%04x-%x-%x",
			binary.LittleEndian.Uint32(v[0:4]), binary.LittleEndian.Uint16(v[4:6]), binary.LittleEndian.Uint16(v[6:8]),
			v[8:10], v[10:16])
	case strings.EqualFold(attr, "objectSid"):
		if s, ok := sidString(v); ok {
			return s
		}
	}
	if isText(v) {
		return string(v)
	}
	return base64.StdEncoding.EncodeToString(v)
}

func isText(v []byte) bool {
	if !utf8.Valid(v) {
		return false
	}
	for _, r := range string(v) {
		if r < 0x20 && r != '\t' && r != '\n' && r != '\r' || r == 0x7f {
			return false
		}
	}
	return true
}

// sidString formats a binary Windows security identifier (MS-DTYP
// 2.4.2.2): revision, sub-authority count, a 48-bit big-endian
// authority, then the little-endian 32-bit sub-authorities.
func sidString(v []byte) (string, bool) {
	if len(v) < 8 || v[0] != 1 || len(v) != 8+4*int(v[1]) {
		return "", false
	}
	var auth uint64
	for _, b := range v[2:8] {
		auth = auth<<8 | uint64(b)
	}
	var sb strings.Builder
	sb.WriteString("S-1-")
	sb.WriteString(strconv.FormatUint(auth, 10))
	for i := 8; i < len(v); i += 4 {
		sb.WriteByte('-')
		sb.WriteString(strconv.FormatUint(uint64(binary.LittleEndian.Uint32(v[i:i+4])), 10))
	}
	return sb.String(), true
}
