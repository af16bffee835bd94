//go:build !unix

package keystore

import "io/fs"

// ownedByMe cannot tell here: Windows guards files with ACLs, not an owner and mode
// bits, so the key file store refuses to run rather than trust a file it cannot check.
func ownedByMe(fs.FileInfo) (owned, supported bool) { return false, false }
