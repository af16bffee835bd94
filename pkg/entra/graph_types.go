package entra

import (
	"crypto/rand"
	"crypto/sha1"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"time"
)

// Well-known names and ids.
const (
	// GraphAppID is the appId of Microsoft Graph, the same in every tenant.
	GraphAppID = "00000003-0000-0000-c000-000000000000"
	// ProvisionerDisplayName is the display name of the app the migration manages.
	ProvisionerDisplayName = "EntraClaw Agent ID Provisioner"
	// SignInAudienceMyOrg makes an app single-tenant.
	SignInAudienceMyOrg = "AzureADMyOrg"
	// KeyTypeX509 and KeyUsageVerify describe a certificate credential.
	KeyTypeX509    = "AsymmetricX509Cert"
	KeyUsageVerify = "Verify"
	// ResourceAccessRole marks an application permission in requiredResourceAccess.
	ResourceAccessRole = "Role"
)

// graphTimeLayout is how dates are sent to Graph (ISO 8601, UTC, seconds).
const graphTimeLayout = "2006-01-02T15:04:05Z"

// Application is a Graph application object (an app registration).
type Application struct {
	ID                     string                   `json:"id"`
	AppID                  string                   `json:"appId"`
	DisplayName            string                   `json:"displayName"`
	SignInAudience         string                   `json:"signInAudience,omitempty"`
	KeyCredentials         []KeyCredential          `json:"keyCredentials"`
	PasswordCredentials    []PasswordCredential     `json:"passwordCredentials"`
	RequiredResourceAccess []RequiredResourceAccess `json:"requiredResourceAccess"`
}

// KeyCredential is a certificate registered on an application. Dates are kept
// as the strings Graph sent, so that a credential read from Graph is sent back
// unchanged: a KeyCredential decoded from JSON marshals as exactly the
// properties it was read with, except key, which is sent as null (Graph then
// keeps the stored certificate).
type KeyCredential struct {
	CustomKeyIdentifier *string `json:"customKeyIdentifier,omitempty"`
	DisplayName         *string `json:"displayName,omitempty"`
	StartDateTime       string  `json:"startDateTime,omitempty"`
	EndDateTime         string  `json:"endDateTime,omitempty"`
	// Key is the base64 DER certificate; Graph returns it only for a
	// single-object read that selects keyCredentials.
	Key   *string `json:"key"`
	KeyID string  `json:"keyId"`
	Type  string  `json:"type"`
	Usage string  `json:"usage"`

	// read holds the properties as Graph returned them, nil for a new credential.
	read map[string]json.RawMessage
}

// keyCredentialFields has KeyCredential's fields without its methods.
type keyCredentialFields KeyCredential

// UnmarshalJSON decodes a credential and remembers the properties as read.
func (k *KeyCredential) UnmarshalJSON(data []byte) error {
	var fields keyCredentialFields
	if err := json.Unmarshal(data, &fields); err != nil {
		return err
	}
	var read map[string]json.RawMessage
	if err := json.Unmarshal(data, &read); err != nil {
		return err
	}
	*k = KeyCredential(fields)
	k.read = read
	return nil
}

// MarshalJSON sends a new credential as its fields, and a credential read from
// Graph as the properties it was read with and "key": null.
func (k KeyCredential) MarshalJSON() ([]byte, error) {
	if k.read == nil {
		return json.Marshal(keyCredentialFields(k))
	}
	out := make(map[string]json.RawMessage, len(k.read)+1)
	for name, v := range k.read {
		if !strings.HasPrefix(name, "@odata.") {
			out[name] = v
		}
	}
	out["key"] = json.RawMessage("null")
	return json.Marshal(out)
}

// NewKeyCredential describes cert for upload: type AsymmetricX509Cert, usage
// Verify, key = base64 of the DER certificate, a new random keyId, start =
// the later of now and NotBefore+1s, end = NotAfter-1s. customKeyIdentifier is
// left out so Graph fills in the thumbprint.
func NewKeyCredential(cert *x509.Certificate, displayName string) KeyCredential {
	start := time.Now().UTC().Truncate(time.Second)
	if nb := cert.NotBefore.UTC().Add(time.Second); nb.After(start) {
		start = nb
	}
	end := cert.NotAfter.UTC().Add(-time.Second)
	key := base64.StdEncoding.EncodeToString(cert.Raw)
	k := KeyCredential{
		StartDateTime: start.Format(graphTimeLayout),
		EndDateTime:   end.Format(graphTimeLayout),
		Key:           &key,
		KeyID:         newUUID(),
		Type:          KeyTypeX509,
		Usage:         KeyUsageVerify,
	}
	if displayName != "" {
		k.DisplayName = &displayName
	}
	return k
}

// MatchesThumbprint reports whether this credential is the certificate with the
// given SHA-1 thumbprint (hex, any case). It compares customKeyIdentifier as
// hex or base64 of the SHA-1 and, when Graph returned the key, the SHA-1 of
// the certificate itself.
func (k KeyCredential) MatchesThumbprint(thumb string) bool {
	want, err := hex.DecodeString(strings.TrimSpace(thumb))
	if err != nil || len(want) != sha1.Size {
		return false
	}
	if k.CustomKeyIdentifier != nil {
		id := strings.TrimSpace(*k.CustomKeyIdentifier)
		if got, err := hex.DecodeString(id); err == nil && string(got) == string(want) {
			return true
		}
		if got, err := base64.StdEncoding.DecodeString(id); err == nil && string(got) == string(want) {
			return true
		}
	}
	if k.Key != nil {
		if der, err := base64.StdEncoding.DecodeString(*k.Key); err == nil {
			sum := sha1.Sum(der)
			return string(sum[:]) == string(want)
		}
	}
	return false
}

// End is EndDateTime parsed; the zero time when it is missing or malformed.
func (k KeyCredential) End() time.Time { return parseGraphTime(k.EndDateTime) }

// Name is the display name, or "" when Graph has none.
func (k KeyCredential) Name() string {
	if k.DisplayName == nil {
		return ""
	}
	return *k.DisplayName
}

func parseGraphTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}
	}
	return t
}

// Secret holds a secret value that must never be printed or logged: every fmt
// verb, slog and encoding/json show "[REDACTED]" (json: null). Reveal returns
// the value for the one place that stores it.
type Secret struct{ value string }

const redacted = "[REDACTED]"

// Reveal returns the secret value.
func (s Secret) Reveal() string { return s.value }

// IsZero reports whether there is no secret.
func (s Secret) IsZero() bool { return s.value == "" }

// String returns "[REDACTED]".
func (s Secret) String() string { return redacted }

// GoString returns "[REDACTED]".
func (s Secret) GoString() string { return redacted }

// Format writes "[REDACTED]" for every verb.
func (s Secret) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(redacted)) }

// LogValue keeps the value out of slog output.
func (s Secret) LogValue() slog.Value { return slog.StringValue(redacted) }

// MarshalJSON writes null, never the value.
func (s Secret) MarshalJSON() ([]byte, error) { return []byte("null"), nil }

// PasswordCredential is a client secret on an application. SecretText is set
// only in the answer to addPassword and is never marshalled.
type PasswordCredential struct {
	KeyID         string `json:"keyId"`
	DisplayName   string `json:"displayName,omitempty"`
	Hint          string `json:"hint,omitempty"`
	StartDateTime string `json:"startDateTime,omitempty"`
	EndDateTime   string `json:"endDateTime,omitempty"`
	SecretText    Secret `json:"-"`
}

// passwordCredentialFields has PasswordCredential's fields without its methods.
type passwordCredentialFields PasswordCredential

// UnmarshalJSON decodes a password credential, secretText included.
func (p *PasswordCredential) UnmarshalJSON(data []byte) error {
	var fields passwordCredentialFields
	if err := json.Unmarshal(data, &fields); err != nil {
		return err
	}
	var secret struct {
		SecretText *string `json:"secretText"`
	}
	if err := json.Unmarshal(data, &secret); err != nil {
		return err
	}
	*p = PasswordCredential(fields)
	if secret.SecretText != nil {
		p.SecretText = Secret{value: *secret.SecretText}
	}
	return nil
}

// End is EndDateTime parsed; the zero time when it is missing or malformed.
func (p PasswordCredential) End() time.Time { return parseGraphTime(p.EndDateTime) }

// RequiredResourceAccess declares the permissions an app wants on one resource.
type RequiredResourceAccess struct {
	ResourceAppID  string           `json:"resourceAppId"`
	ResourceAccess []ResourceAccess `json:"resourceAccess"`
}

// ResourceAccess is one declared permission: an app role ("Role") or a delegated scope ("Scope").
type ResourceAccess struct {
	ID   string `json:"id"`
	Type string `json:"type"`
}

// ServicePrincipal is an app's instance in a tenant.
type ServicePrincipal struct {
	ID          string    `json:"id"`
	AppID       string    `json:"appId"`
	DisplayName string    `json:"displayName"`
	AppRoles    []AppRole `json:"appRoles"`
}

// AppRole is an application permission a resource offers.
type AppRole struct {
	ID                 string   `json:"id"`
	Value              string   `json:"value"`
	DisplayName        string   `json:"displayName"`
	IsEnabled          bool     `json:"isEnabled"`
	AllowedMemberTypes []string `json:"allowedMemberTypes"`
}

// AppRoleAssignment is a granted application permission.
type AppRoleAssignment struct {
	ID          string `json:"id"`
	AppRoleID   string `json:"appRoleId"`
	PrincipalID string `json:"principalId"`
	ResourceID  string `json:"resourceId"`
}

// newUUID returns a random (version 4) UUID.
func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// Thumbprint is the certificate's SHA-1 thumbprint, lowercase hex: from its body when
// Graph returned it, else from customKeyIdentifier (hex or base64 of the SHA-1); "" when
// neither says.
func (k KeyCredential) Thumbprint() string {
	if k.Key != nil {
		if der, err := base64.StdEncoding.DecodeString(*k.Key); err == nil && len(der) > 0 {
			sum := sha1.Sum(der)
			return hex.EncodeToString(sum[:])
		}
	}
	if k.CustomKeyIdentifier != nil {
		id := strings.TrimSpace(*k.CustomKeyIdentifier)
		if got, err := hex.DecodeString(id); err == nil && len(got) == sha1.Size {
			return hex.EncodeToString(got)
		}
		if got, err := base64.StdEncoding.DecodeString(id); err == nil && len(got) == sha1.Size {
			return hex.EncodeToString(got)
		}
	}
	return ""
}

// Reupload returns a new credential for the same certificate, body included, to add it
// again after it was dropped; false when Graph did not return the body.
func (k KeyCredential) Reupload() (KeyCredential, bool) {
	if k.read == nil {
		return k, true // a new credential: it carries its body
	}
	if k.Key == nil {
		return KeyCredential{}, false
	}
	der, err := base64.StdEncoding.DecodeString(*k.Key)
	if err != nil {
		return KeyCredential{}, false
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return KeyCredential{}, false
	}
	return NewKeyCredential(cert, k.Name()), true
}
