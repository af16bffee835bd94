//go:build windows

package main

import "golang.org/x/sys/windows"

// fileACL returns the owner and DACL of path as SDDL, e.g. O:S-1-5-…D:P(A;;FA;;;S-1-5-…).
func fileACL(path string) (string, error) {
	sd, err := windows.GetNamedSecurityInfo(path, windows.SE_FILE_OBJECT,
		windows.OWNER_SECURITY_INFORMATION|windows.DACL_SECURITY_INFORMATION)
	if err != nil {
		return "", err
	}
	return sd.String(), nil
}
