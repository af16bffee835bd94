package entra

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Decoded is a JWT decoded without verifying its signature: Graph access tokens are
// opaque to clients and are read, never verified. Every JWT entraclaw reads is
// decoded here, by golang-jwt.
type Decoded struct {
	// Header is the JOSE header, e.g. {"alg":"RS256","typ":"JWT","x5t":"…","kid":"…"}.
	Header map[string]any
	// Claims is the payload; numbers are json.Number, so large values keep their digits.
	Claims jwt.MapClaims
}

// DecodeJWT decodes raw (surrounding white space is ignored) without verifying the
// signature. The error is one line and never contains any part of the token.
func DecodeJWT(raw string) (*Decoded, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return nil, errors.New("token is empty")
	}
	claims := jwt.MapClaims{}
	tok, _, err := jwt.NewParser(jwt.WithJSONNumber()).ParseUnverified(raw, claims)
	if err != nil {
		return nil, fmt.Errorf("not a decodable jwt: %s", parseErrorText(err))
	}
	return &Decoded{Header: tok.Header, Claims: claims}, nil
}

// parseErrorText keeps golang-jwt's category and reason ("token is malformed: could not
// base64 decode header") and drops the wrapped cause, whose text may quote token bytes.
func parseErrorText(err error) string {
	parts := strings.SplitN(err.Error(), ": ", 3)
	if len(parts) > 2 {
		parts = parts[:2]
	}
	return strings.Join(parts, ": ")
}

// String returns the claim as a string, or "" when it is absent or not a string.
func (d *Decoded) String(claim string) string {
	s, _ := d.Claims[claim].(string)
	return s
}

// Audience returns the aud claim, which may be a string or an array of strings.
func (d *Decoded) Audience() ([]string, error) {
	errType := errors.New("aud claim is neither a string nor an array of strings")
	switch d.Claims["aud"].(type) {
	case nil:
		if _, present := d.Claims["aud"]; present {
			return nil, errType
		}
		return nil, nil
	case string, []any:
	default:
		return nil, errType
	}
	aud, err := d.Claims.GetAudience()
	if err != nil {
		return nil, errType
	}
	return aud, nil
}

// AppID is the client id: appid in v1 tokens, azp in v2 tokens.
func (d *Decoded) AppID() string {
	if s := d.String("appid"); s != "" {
		return s
	}
	return d.String("azp")
}

// TenantID is the tid claim.
func (d *Decoded) TenantID() string { return d.String("tid") }

// AppIDACR says how the client authenticated: "0" public client, "1" secret,
// "2" certificate (appidacr in v1 tokens, azpacr in v2 tokens).
func (d *Decoded) AppIDACR() string {
	if s := d.String("appidacr"); s != "" {
		return s
	}
	return d.String("azpacr")
}

// IdTyp is the idtyp claim; "app" marks an app-only token.
func (d *Decoded) IdTyp() string { return d.String("idtyp") }

// Roles returns the string values of the roles claim; nil when the claim is absent
// (Entra leaves it out when no application permission is granted).
func (d *Decoded) Roles() []string {
	list, ok := d.Claims["roles"].([]any)
	if !ok {
		return nil
	}
	roles := make([]string, 0, len(list))
	for _, r := range list {
		if s, ok := r.(string); ok {
			roles = append(roles, s)
		}
	}
	return roles
}

// ExpiresAt returns the exp claim; ok is false when it is absent.
func (d *Decoded) ExpiresAt() (exp time.Time, ok bool, err error) {
	nd, err := d.Claims.GetExpirationTime()
	if err != nil || (nd != nil && !validUnixSeconds(d.Claims["exp"])) {
		return time.Time{}, false, errors.New("exp claim is not a number of seconds")
	}
	if nd == nil {
		return time.Time{}, false, nil
	}
	return nd.Time, true, nil
}

// validUnixSeconds reports whether a numeric claim is finite and within the range time
// values can represent meaningfully (years 0 to 9999).
func validUnixSeconds(v any) bool {
	var f float64
	switch n := v.(type) {
	case float64:
		f = n
	case interface{ Float64() (float64, error) }:
		var err error
		if f, err = n.Float64(); err != nil {
			return false
		}
	default:
		return false
	}
	return !math.IsNaN(f) && f > -62135596800 && f < 253402300800
}
