package entra

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
)

// AuthError is a failure to get a token, or to reach Entra ID or Graph, typed where the
// SDK's error enters this package (a credential's GetToken, FetchToken, a Graph request).
// The SDK's own text runs to several lines, with response bodies and links; AuthError
// says the same in one line and keeps what to do about it apart, for the hint line.
type AuthError struct {
	// Summary is one line: the AADSTS message, "cannot reach <host>: <cause>", what the
	// Azure CLI said. It never holds a response body or the hint.
	Summary string
	// HintText says what to do next, in one line ("" when there is nothing to add).
	HintText string
	// STS is the token service's rejection when it answered with one, also when the
	// SDK's error lost the body (the device-code flow reads it itself).
	STS *STSError
	// Unreachable: the host could not be reached or its answer read (see IsUnreachable).
	Unreachable bool
	// Err is the SDK's error: errors.As still finds *azidentity.AuthenticationFailedError,
	// *url.Error or context.Canceled through it.
	Err error
}

func (e *AuthError) Error() string { return e.Summary }

// Unwrap is the SDK's error.
func (e *AuthError) Unwrap() error { return e.Err }

// Hint is HintText, else the hint of an error inside (a TPM's signing error says what
// to do about the TPM).
func (e *AuthError) Hint() string {
	var h interface{ Hint() string }
	if e.HintText == "" && errors.As(e.Err, &h) {
		return h.Hint()
	}
	return e.HintText
}

// IsUnreachable reports whether err is a failure to reach the host or to read its
// answer (network, TLS, an HTTP status or a response the token service would not send),
// as opposed to a sign-in the token service refused: what to fix is the connection, not
// the account.
func IsUnreachable(err error) bool {
	var ae *AuthError
	return errors.As(err, &ae) && ae.Unreachable
}

// typed is err as this package hands errors out: unchanged when it already is typed
// (an *AuthError or a *FederatedMismatchError anywhere in its chain), else an *AuthError
// that describes it. nil stays nil.
func typed(err error) error {
	if err == nil {
		return nil
	}
	var ae *AuthError
	var fm *FederatedMismatchError
	if errors.As(err, &ae) || errors.As(err, &fm) {
		return err
	}
	return newAuthError(err)
}

// requestFailure matches the wrapped net/http error inside azidentity and MSAL
// messages: `Get "https://host/path": dial tcp ...`.
var requestFailure = regexp.MustCompile(`(?s)(?:Get|Post|GET|POST) "(https?://[^"]+)": (.+)`)

// troubleshootSuffix is the link azidentity appends to its messages.
var troubleshootSuffix = regexp.MustCompile(`\.? ?To troubleshoot, visit https://\S+$`)

// tooLargeText is ResponseTooLargeError's text: MSAL flattens the transport's errors
// into text, so a capped token response reaches us only as words.
var tooLargeText = regexp.MustCompile(`the response from \S+ is larger than [0-9]+ [A-Za-z]+; refusing to read it`)

// newAuthError describes an error from getting a token (or from a Graph request that
// needed one): the AADSTS code and description, "cannot reach <host>: …" for network
// and TLS failures, an HTTP status from the authority, else the first line of the
// SDK's text without its troubleshooting link.
func newAuthError(err error) *AuthError {
	if sts, ok := AsSTSError(err); ok {
		return &AuthError{Summary: sts.Error(), HintText: sts.Hint(), STS: sts, Err: err}
	}
	var tooLarge *ResponseTooLargeError
	if errors.As(err, &tooLarge) {
		return &AuthError{Summary: tooLarge.Error(), HintText: tooLarge.Hint(), Unreachable: true, Err: err}
	}
	if m := tooLargeText.FindString(err.Error()); m != "" {
		return &AuthError{Summary: m, HintText: (&ResponseTooLargeError{}).Hint(), Unreachable: true, Err: err}
	}
	var afe *azidentity.AuthenticationFailedError
	if errors.As(err, &afe) && afe.RawResponse != nil {
		return httpFailure(afe.RawResponse, err)
	}
	var uerr *url.Error
	if errors.As(err, &uerr) {
		return networkFailure(uerr.URL, uerr.Err.Error(), err)
	}
	msg := err.Error()
	if m := requestFailure.FindStringSubmatch(msg); m != nil {
		return networkFailure(m[1], troubleshootSuffix.ReplaceAllString(strings.TrimSpace(m[2]), ""), err)
	}
	return &AuthError{Summary: firstLine(troubleshootSuffix.ReplaceAllString(strings.TrimSpace(msg), "")), Err: err}
}

func httpFailure(resp *http.Response, err error) *AuthError {
	host := "the authority"
	if resp.Request != nil && resp.Request.URL != nil {
		host = resp.Request.URL.Host
	}
	return &AuthError{
		Summary:     fmt.Sprintf("token request to %s failed: HTTP %s", host, statusText(resp.StatusCode)),
		HintText:    "check -cloud and -authority-host",
		Unreachable: true,
		Err:         err,
	}
}

func networkFailure(rawURL, cause string, err error) *AuthError {
	host := rawURL
	if u, perr := url.Parse(rawURL); perr == nil && u.Host != "" {
		host = u.Host
	}
	cause = firstLine(cause)
	hint := "check the network, -cloud/-authority-host and HTTPS_PROXY/NO_PROXY"
	if strings.Contains(cause, "x509:") || strings.Contains(cause, "tls:") || strings.Contains(cause, "certificate") {
		hint = "if a proxy or a private CA signs this host's certificate, pass its CA with -ca-file / ENTRACLAW_CA_FILE"
	}
	return &AuthError{Summary: fmt.Sprintf("cannot reach %s: %s", host, cause), HintText: hint, Unreachable: true, Err: err}
}

// azureCLIFailure describes a failure of the Azure CLI credential. az runs as a
// separate program, so what it said is text: azidentity passes on its stderr.
func azureCLIFailure(err error) error {
	msg := err.Error()
	switch {
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return typed(err)
	case strings.Contains(msg, "executable not found on path"):
		return &AuthError{Summary: "azure cli: az not found on PATH", HintText: "install the Azure CLI or use -operator-auth device-code", Err: err}
	case strings.Contains(msg, "az login"):
		return &AuthError{Summary: "azure cli: not logged in", HintText: "run `az login` (with --tenant for the target tenant) and try again", Err: err}
	}
	return &AuthError{Summary: "azure cli: " + azureCLIErrorLine(msg), Err: err}
}

// azureCLIErrorLine is the line of az's output that says what failed.
func azureCLIErrorLine(msg string) string {
	msg = troubleshootSuffix.ReplaceAllString(strings.TrimSpace(msg), "")
	msg = strings.TrimPrefix(msg, "AzureCLICredential: ")
	// az prints warnings before the error; the ERROR: line says what failed.
	for _, line := range strings.Split(msg, "\n") {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "ERROR:"); ok && strings.TrimSpace(rest) != "" {
			return strings.TrimSpace(rest)
		}
	}
	if line := firstLine(msg); line != "" {
		return line
	}
	return "failed to get a token"
}

// typedCredential hands out an azidentity credential's failures as typed errors.
type typedCredential struct {
	inner    azcore.TokenCredential
	describe func(error) error // typed, or azureCLIFailure
}

func (t typedCredential) GetToken(ctx context.Context, o policy.TokenRequestOptions) (azcore.AccessToken, error) {
	tok, err := t.inner.GetToken(ctx, o)
	if err != nil {
		return tok, t.describe(err)
	}
	return tok, nil
}
