package cli_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/entraclaw/entraclaw-cli/pkg/cli"
	"github.com/entraclaw/entraclaw-cli/pkg/entra"
	"github.com/entraclaw/entraclaw-cli/pkg/keystore"
)

// sdkText is what an SDK error says: several lines, a response body, a link. None of it
// may reach the user.
const sdkText = "ClientCertificateCredential authentication failed. \nPOST https://login.example/t/oauth2/v2.0/token\n" +
	"--------------------------------------------------------------------------------\nRESPONSE 401: 401 Unauthorized\n" +
	`{"error":"invalid_client","trace_id":"0d3e"}` + "\nTo troubleshoot, visit https://aka.ms/azsdk/go/identity/troubleshoot"

// hinted is an error inside a typed one that knows what to do (a TPM's signing error).
type hinted struct{ msg, hint string }

func (e *hinted) Error() string { return e.msg }
func (e *hinted) Hint() string  { return e.hint }

// silentWrapper has a Hint method with nothing to say (as a Graph error that is no tenant
// policy) around an error that has advice.
type silentWrapper struct {
	msg string
	err error
}

func (e *silentWrapper) Error() string { return e.msg }
func (e *silentWrapper) Hint() string  { return "" }
func (e *silentWrapper) Unwrap() error { return e.err }

func TestClassifyTypedErrors(t *testing.T) {
	sts := &entra.STSError{Status: 401, Codes: []int{700027}, ErrorCode: "invalid_client",
		Description: "AADSTS700027: The certificate with identifier used to sign the client assertion is not registered on application."}
	rejected := &entra.AuthError{Summary: sts.Error(), HintText: sts.Hint(), STS: sts, Err: errors.New(sdkText)}
	refused := &entra.AuthError{Summary: "cannot reach login.example: dial tcp 10.0.0.1:443: connect: connection refused",
		HintText: "check the network, -cloud/-authority-host and HTTPS_PROXY/NO_PROXY", Unreachable: true,
		Err: &url.Error{Op: "Post", URL: "https://login.example/t/oauth2/v2.0/token", Err: errors.New(sdkText)}}
	interrupted := &entra.AuthError{Summary: "cannot reach login.example: context canceled",
		Err: &url.Error{Op: "Post", URL: "https://login.example/t/oauth2/v2.0/token", Err: context.Canceled}}
	tpm := &entra.AuthError{Summary: "sign the client assertion: the TPM is busy", Err: &hinted{"sign the client assertion: the TPM is busy", "retry when the TPM is free"}}

	tests := []struct {
		name     string
		err      error
		code     int
		msg      string
		hint     string
		hintFrom string // which error's hint it is, for the failure message
	}{
		{"sts rejection under our wrapping", fmt.Errorf("operator credential: %w", rejected),
			cli.ExitFailure, "operator credential: " + sts.Error(), sts.Hint(), "the STS error"},
		{"graph request under two wrappers", fmt.Errorf("migrate: reading the app: %w", &entra.RequestError{Method: "GET", Path: "/applications", Err: rejected}),
			cli.ExitFailure, "migrate: reading the app: graph: GET /applications: " + sts.Error(), sts.Hint(), "the STS error"},
		{"network failure", fmt.Errorf("token: %w", refused),
			cli.ExitFailure, "token: " + refused.Summary, refused.HintText, "the network failure"},
		{"a wrapper's own hint and exit code win", cli.Wrap(cli.ExitNotSetUp, "run entraclaw-migrate", fmt.Errorf("provisioner sign-in: %w", rejected)),
			cli.ExitNotSetUp, "provisioner sign-in: " + sts.Error(), "run entraclaw-migrate", "the wrapper"},
		{"exit code from inside the typed error", fmt.Errorf("signing: %w", &entra.AuthError{Summary: "keyring: no bundle", Err: fmt.Errorf("x: %w", keystore.ErrNotFound)}),
			cli.ExitNotSetUp, "signing: keyring: no bundle", "run `entraclaw-migrate` to set up certificate authentication", "keystore.ErrNotFound"},
		{"interrupt inside the typed error", fmt.Errorf("operator credential: %w", interrupted),
			cli.ExitInterrupted, "interrupted", "", "none"},
		{"hint of an error inside the typed one", fmt.Errorf("provisioner credential: %w", tpm),
			cli.ExitFailure, "provisioner credential: sign the client assertion: the TPM is busy", "retry when the TPM is free", "the TPM error"},
		{"past a wrapper whose hint is empty", fmt.Errorf("reading the app: %w", &hinted{"graph: the TPM is busy", ""}),
			cli.ExitFailure, "reading the app: graph: the TPM is busy", "", "none"},
		{"past a wrapper with nothing to say", &silentWrapper{"migrate: sign-in", refused},
			cli.ExitFailure, "migrate: sign-in", refused.HintText, "the network failure inside"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, msg, hint := cli.Classify(tt.err)
			if code != tt.code {
				t.Errorf("exit code %d, want %d", code, tt.code)
			}
			if msg != tt.msg {
				t.Errorf("message\n %q\nwant\n %q", msg, tt.msg)
			}
			if hint != tt.hint {
				t.Errorf("hint %q, want %q (from %s)", hint, tt.hint, tt.hintFrom)
			}
			if strings.Contains(msg, "RESPONSE 401") || strings.Contains(msg, "troubleshoot") || tt.hint != "" && strings.Contains(msg, tt.hint) {
				t.Errorf("message %q shows the SDK's text or the hint", msg)
			}
		})
	}
}

// TestClassifySDKErrorHintOnHintLine: a real SDK failure (the token endpoint refuses the
// connection) reaches the command line with our wrapping kept, in one line, and what to
// do about it on the hint line, not inside the message.
func TestClassifySDKErrorHintOnHintLine(t *testing.T) {
	closed := httptest.NewServer(http.NotFoundHandler())
	host := closed.Listener.Addr().String()
	closed.Close()
	c, err := entra.ResolveCloud("", "https://"+host, "https://"+host)
	if err != nil {
		t.Fatal(err)
	}
	cred, err := entra.NewSecretCredential(c, "72f988bf-86f1-41af-91ab-2d7cd011db47", "11111111-2222-3333-4444-555555555555", "s",
		entra.CredentialOptions{Retry: policy.RetryOptions{MaxRetries: -1}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err = entra.FetchToken(ctx, cred, c.GraphScope())
	if err == nil {
		t.Fatal("FetchToken succeeded against a closed port")
	}
	code, msg, hint := cli.Classify(fmt.Errorf("operator credential: %w", err))
	if code != cli.ExitFailure {
		t.Errorf("exit code %d, want %d", code, cli.ExitFailure)
	}
	if want := "operator credential: cannot reach " + host + ": "; !strings.HasPrefix(msg, want) {
		t.Errorf("message %q, want it to start %q", msg, want)
	}
	if strings.Contains(msg, "HTTPS_PROXY") || strings.Contains(msg, "troubleshoot") {
		t.Errorf("message %q: want neither the hint nor the SDK's link in it", msg)
	}
	if !strings.Contains(hint, "HTTPS_PROXY") {
		t.Errorf("hint %q, want the network hint on the hint line", hint)
	}
}
