package verify

import "github.com/entraclaw/entraclaw-cli/pkg/entra"

// DecodeForPrint decodes raw for `entraclaw-verify -decode`: the header and the claims,
// and signatureVerified false, which is always the case here.
func DecodeForPrint(raw string) (map[string]any, error) {
	d, err := entra.DecodeJWT(raw)
	if err != nil {
		return nil, err
	}
	return map[string]any{"header": d.Header, "claims": map[string]any(d.Claims), "signatureVerified": false}, nil
}
