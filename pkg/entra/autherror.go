package entra

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
)

// STSError is a token request rejected by Entra ID (the STS), e.g. AADSTS700027.
type STSError struct {
	// Status is the HTTP status of the STS response.
	Status int
	// Codes are the AADSTS numbers from error_codes, e.g. [700027].
	Codes []int
	// ErrorCode is the OAuth error, e.g. "invalid_client".
	ErrorCode string
	// Description is the first line of error_description, without trace and correlation ids.
	Description string
	// CorrelationID and TraceID identify the request for Microsoft support.
	CorrelationID, TraceID string
}

// Error is one line: "AADSTS700027: <first line of the description>".
func (e *STSError) Error() string {
	switch {
	case strings.HasPrefix(e.Description, "AADSTS"):
		return e.Description
	case e.Description != "" && len(e.Codes) > 0:
		return fmt.Sprintf("AADSTS%d: %s", e.Codes[0], e.Description)
	case e.Description != "":
		return e.Description
	case len(e.Codes) > 0:
		return fmt.Sprintf("AADSTS%d: %s (HTTP %d)", e.Codes[0], e.ErrorCode, e.Status)
	default:
		return fmt.Sprintf("token request failed: %s (HTTP %d)", e.ErrorCode, e.Status)
	}
}

// Code is the first AADSTS number, or 0 when the response carried none.
func (e *STSError) Code() int {
	if len(e.Codes) > 0 {
		return e.Codes[0]
	}
	return 0
}

// HasCode reports whether code is among the AADSTS numbers of the response.
func (e *STSError) HasCode(code int) bool {
	for _, c := range e.Codes {
		if c == code {
			return true
		}
	}
	return false
}

// Hint says what to do next about this failure, in one line.
func (e *STSError) Hint() string {
	switch {
	case e.HasCode(7000215):
		return "the client secret is wrong: was the secret ID pasted instead of the secret value?"
	case e.HasCode(7000222):
		return "the client secret has expired: run entraclaw-migrate to switch to a certificate (or entraclaw-rollback for a short-lived secret)"
	case e.HasCode(700027):
		return "the certificate is not registered on the app or has expired: run entraclaw-migrate to upload it again; right after an upload it can take a minute to propagate"
	case e.HasCode(700016):
		return "the app was not found in this tenant: check PROVISIONER_CLIENT_ID and TENANT_ID in the state file (and -cloud)"
	case e.HasCode(7000229):
		return "the app has no service principal in this tenant: run entraclaw-migrate"
	case e.HasCode(90002), e.HasCode(900023):
		return "the tenant was not found or is invalid: check TENANT_ID in the state file, -tenant-id and -cloud"
	case e.HasCode(1002012), e.HasCode(70011):
		return "the scope must have the form <resource>/.default, e.g. https://graph.microsoft.com/.default"
	case e.HasCode(700024):
		return "the client assertion is outside its validity window: check the system clock"
	case e.HasCode(codeClientRequestLoop), e.Status == http.StatusTooManyRequests:
		return "Entra ID is throttling token requests from this app (too many in a short time): wait a minute and run the command again; changes already made are kept"
	case e.HasCode(7000112):
		return "the app's service principal is disabled in this tenant (accountEnabled false): no token of it works any more, cached ones included; ask an administrator to enable it"
	case e.HasCode(53003):
		return "Conditional Access blocks this sign-in (many tenants block the device-code flow): use -operator-auth azcli after `az login`, or ask an administrator to exclude you from the policy"
	case len(e.Codes) > 0:
		return fmt.Sprintf("see https://login.microsoftonline.com/error?code=%d", e.Codes[0])
	default:
		return "check the tenant, the client id and the credential"
	}
}

// stsBody is the JSON error body of the token endpoint.
type stsBody struct {
	Error            string `json:"error"`
	ErrorDescription string `json:"error_description"`
	ErrorCodes       []int  `json:"error_codes"`
	CorrelationID    string `json:"correlation_id"`
	TraceID          string `json:"trace_id"`
}

// AsSTSError finds an STS rejection in err: an azidentity
// AuthenticationFailedError whose response body is the STS's JSON error.
func AsSTSError(err error) (*STSError, bool) {
	var ae *AuthError
	if errors.As(err, &ae) && ae.STS != nil {
		return ae.STS, true
	}
	var afe *azidentity.AuthenticationFailedError
	if !errors.As(err, &afe) || afe.RawResponse == nil {
		return nil, false
	}
	body, rerr := runtime.Payload(afe.RawResponse)
	if rerr != nil {
		return nil, false
	}
	return parseSTSBody(afe.RawResponse.StatusCode, body)
}

// parseSTSBody reads the token endpoint's JSON error body.
func parseSTSBody(status int, body []byte) (*STSError, bool) {
	var b stsBody
	if json.Unmarshal(body, &b) != nil || (b.Error == "" && len(b.ErrorCodes) == 0) {
		return nil, false
	}
	e := &STSError{
		Status:        status,
		Codes:         b.ErrorCodes,
		ErrorCode:     b.Error,
		Description:   firstLine(b.ErrorDescription),
		CorrelationID: b.CorrelationID,
		TraceID:       b.TraceID,
	}
	if len(e.Codes) == 0 {
		if code, ok := aadstsCode(e.Description); ok {
			e.Codes = []int{code}
		}
	}
	return e, true
}

// aadstsCode reads the number of a description starting "AADSTS<n>:".
func aadstsCode(desc string) (int, bool) {
	rest, ok := strings.CutPrefix(desc, "AADSTS")
	if !ok {
		return 0, false
	}
	digits, _, ok := strings.Cut(rest, ":")
	if !ok {
		return 0, false
	}
	n, err := strconv.Atoi(digits)
	return n, err == nil
}

// firstLine is the first non-blank line of s, trimmed.
func firstLine(s string) string {
	for _, line := range strings.Split(s, "\n") {
		if line = strings.TrimSpace(line); line != "" {
			return line
		}
	}
	return ""
}

// statusText is "404 Not Found" style.
func statusText(code int) string {
	if t := http.StatusText(code); t != "" {
		return fmt.Sprintf("%d %s", code, t)
	}
	return strconv.Itoa(code)
}
