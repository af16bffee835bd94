//go:build windows

package state

import (
	"os"

	"golang.org/x/sys/windows"
)

// fileAllAccess is FILE_ALL_ACCESS (SDDL "FA").
const fileAllAccess = windows.STANDARD_RIGHTS_REQUIRED | windows.SYNCHRONIZE | 0x1ff

// restrictToOwner is Windows' 0600: it gives f, just created and still empty, a protected
// DACL (nothing inherited from the directory) with one entry, full control for the user
// running this process. Windows ignores Unix modes, and a new file otherwise inherits its
// directory's ACL, which may let other users or groups read it.
func restrictToOwner(f *os.File) error {
	acl, err := ownerOnlyACL()
	if err != nil {
		return err
	}
	return windows.SetNamedSecurityInfo(f.Name(), windows.SE_FILE_OBJECT,
		windows.DACL_SECURITY_INFORMATION|windows.PROTECTED_DACL_SECURITY_INFORMATION, nil, nil, acl, nil)
}

// ownerOnlyACL is the DACL restrictToOwner sets: full control for the current user only.
func ownerOnlyACL() (*windows.ACL, error) {
	user, err := windows.GetCurrentProcessToken().GetTokenUser()
	if err != nil {
		return nil, err
	}
	return windows.ACLFromEntries([]windows.EXPLICIT_ACCESS{{
		AccessPermissions: fileAllAccess,
		AccessMode:        windows.GRANT_ACCESS,
		Inheritance:       windows.NO_INHERITANCE,
		Trustee: windows.TRUSTEE{
			TrusteeForm:  windows.TRUSTEE_IS_SID,
			TrusteeType:  windows.TRUSTEE_IS_USER,
			TrusteeValue: windows.TrusteeValueFromSID(user.User.Sid),
		},
	}}, nil)
}
