package state

import (
	"slices"
	"strings"
)

// KeyFederatedCredentials lists the names of the federated identity credentials
// entraclaw-migrate -federate put on the app, comma-separated and sorted (FIC names are
// URL-friendly: no commas). entraclaw-verify compares the app's FICs with it.
const KeyFederatedCredentials = "PROVISIONER_FEDERATED_CREDENTIALS"

// FederatedCredentials returns the sorted FIC names PROVISIONER_FEDERATED_CREDENTIALS
// records (none for a nil Doc or an absent key).
func (d *Doc) FederatedCredentials() []string {
	if d == nil {
		return nil
	}
	v, _, _ := d.String(KeyFederatedCredentials)
	var out []string
	for _, n := range strings.Split(v, ",") {
		if n = strings.TrimSpace(n); n != "" {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out
}
