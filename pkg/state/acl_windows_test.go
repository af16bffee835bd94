//go:build windows

package state

import (
	"testing"

	"golang.org/x/sys/windows"
)

// assertOwnerOnly checks Windows' 0600: a protected DACL whose only entry gives the
// current user full control.
func assertOwnerOnly(t *testing.T, path string) {
	t.Helper()
	user, err := windows.GetCurrentProcessToken().GetTokenUser()
	if err != nil {
		t.Fatal(err)
	}
	sd, err := windows.GetNamedSecurityInfo(path, windows.SE_FILE_OBJECT, windows.DACL_SECURITY_INFORMATION)
	if err != nil {
		t.Fatalf("%s: read its ACL: %v", path, err)
	}
	want := "D:P(A;;FA;;;" + user.User.Sid.String() + ")"
	if got := sd.String(); got != want {
		t.Errorf("%s has the ACL %s, want %s (owner only)", path, got, want)
	}
}
