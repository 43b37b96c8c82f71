package oauth2

import (
	"testing"
)

// wantErr describes an expected *Error; the zero value means no error.
type wantErr struct {
	code   string
	desc   string
	status int
}

// checkErr asserts that err is nil when want is zero, else an *Error with
// exactly want's code, description and status.
func checkErr(t *testing.T, err error, want wantErr) {
	t.Helper()
	if want == (wantErr{}) {
		if err != nil {
			t.Fatalf("error = %v, want nil", err)
		}
		return
	}
	if err == nil {
		t.Fatalf("error = nil, want %s: %s", want.code, want.desc)
	}
	e, ok := As(err)
	if !ok {
		t.Fatalf("error %T %v is not *Error", err, err)
	}
	if e.Code != want.code || e.Description != want.desc {
		t.Fatalf("error = %q: %q, want %q: %q", e.Code, e.Description, want.code, want.desc)
	}
	if want.status != 0 && e.Status != want.status {
		t.Fatalf("status = %d, want %d", e.Status, want.status)
	}
}

// checkE is checkErr for functions returning *Error, avoiding the typed-nil
// interface trap.
func checkE(t *testing.T, e *Error, want wantErr) {
	t.Helper()
	if e == nil {
		checkErr(t, nil, want)
		return
	}
	checkErr(t, e, want)
}
