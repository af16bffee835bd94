//go:build windows

package state

import (
	"sync"
	"testing"

	"golang.org/x/sys/windows"
)

// assertOwnerOnly checks Windows' 0600: a protected DACL whose only entry gives the
// current user full control.
func assertOwnerOnly(t *testing.T, path string) {
	t.Helper()
	if underWine() {
		// Debian's Wine 8 builds wineserver without xattr support: it accepts the DACL, maps
		// it onto Unix mode bits and reads back one made from those bits. Real Windows keeps it.
		t.Logf("Wine: the owner-only ACL of %s cannot be read back (no stored security descriptors); not checked", path)
		return
	}
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

// underWine reports whether the test runs under Wine (ntdll exports wine_get_version).
var underWine = sync.OnceValue(func() bool {
	return windows.NewLazySystemDLL("ntdll.dll").NewProc("wine_get_version").Find() == nil
})
