//go:build windows

package state

import "io/fs"

// OwnedByMe reports whether the file described by info belongs to this process's
// user. Windows has no uid in fs.FileInfo: files under the user's own
// %LOCALAPPDATA% and work tree are taken as the user's.
func OwnedByMe(fs.FileInfo) bool { return true }

// PrivateMode reports whether only the owner can read or write the file. Windows
// file modes carry no permission bits; access is the directory's ACL.
func PrivateMode(fs.FileInfo) bool { return true }
