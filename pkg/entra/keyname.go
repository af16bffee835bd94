package entra

import (
	"os"

	"github.com/entraclaw/entraclaw-cli/pkg/certs"
)

// maxKeyDisplayName is the longest displayName Graph keeps on a key credential; it
// shortens longer ones silently.
const maxKeyDisplayName = 90

// MachineKeyName is the displayName entraclaw-migrate gives this machine's certificate
// on the app, "CN=entraclaw-provisioner (<hostname>)", so that a reader of the app can
// tell the machines' certificates apart. Without a host name it is "CN=entraclaw-provisioner".
func MachineKeyName() string {
	host, _ := os.Hostname()
	return keyNameFor(host)
}

func keyNameFor(host string) string {
	name := "CN=" + certs.CommonName
	if host != "" {
		name += " (" + host + ")"
	}
	if len(name) > maxKeyDisplayName {
		name = name[:maxKeyDisplayName]
	}
	return name
}
