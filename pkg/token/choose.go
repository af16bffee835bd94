package token

import (
	"runtime"
	"strings"
	"time"

	"github.com/entraclaw/entraclaw-cli/pkg/keystore"
)

// CacheAuto is -token-cache's default: the best cache this machine has.
const CacheAuto = "auto"

// secretServiceProbeTimeout bounds the look for a Secret Service when auto cannot use the
// kernel keyring: every binary decides within 2 s, whatever the session bus does.
const secretServiceProbeTimeout = time.Second

// ValidCacheSetting reports whether v is a -token-cache value.
func ValidCacheSetting(v string) bool {
	switch v {
	case CacheAuto, keystore.CacheKeyring, keystore.CacheKernel, keystore.CacheNone:
		return true
	}
	return false
}

// ChooseCache resolves the -token-cache setting on this machine to a keystore cache kind.
// auto on Linux is the kernel keyring where keyctl works (a cached token then needs no
// D-Bus round trip), else the Secret Service when one is reachable, else none, with
// noneBecause saying why; elsewhere auto is the OS keyring. An explicit kernel that cannot
// work is keystore's *UnavailableError naming why; auto never fails.
func ChooseCache(setting string) (kind, noneBecause string, err error) {
	switch setting {
	case keystore.CacheKeyring, keystore.CacheNone:
		return setting, "", nil
	case keystore.CacheKernel:
		if err := keystore.ProbeKernelKeyring(); err != nil {
			return "", "", err
		}
		return keystore.CacheKernel, "", nil
	}
	if runtime.GOOS != "linux" {
		return keystore.CacheKeyring, "", nil
	}
	kernelErr := keystore.ProbeKernelKeyring()
	if kernelErr == nil {
		return keystore.CacheKernel, "", nil
	}
	ssErr := keystore.SecretServiceReachable(secretServiceProbeTimeout)
	if ssErr == nil {
		return keystore.CacheKeyring, "", nil
	}
	return keystore.CacheNone, oneLine(kernelErr.Error()) + "; " + oneLine(ssErr.Error()), nil
}

// FederatedCache reports whether federated tokens are cached under the -token-cache
// setting: in the kernel keyring, when the setting is auto or kernel and keyctl works here.
// A CI runner has no Secret Service to count on, and a token is never written to a file.
func FederatedCache(setting string) bool {
	if setting != CacheAuto && setting != keystore.CacheKernel {
		return false
	}
	return keystore.ProbeKernelKeyring() == nil
}

// oneLine is s with every run of white space (newlines too) made one space.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
