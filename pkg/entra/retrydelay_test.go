package entra

import (
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
)

// TestRetryDelayDefaults: a cloud without a RetryDelay leaves azcore's default backoff
// (what every production binary runs with); a cloud's RetryDelay reaches the token and
// Graph clients built for it; a delay in the client's own options wins over both.
func TestRetryDelayDefaults(t *testing.T) {
	public, err := ResolveCloud("", "", "")
	if err != nil {
		t.Fatal(err)
	}
	if public.RetryDelay != 0 {
		t.Fatalf("ResolveCloud sets RetryDelay %s, want 0 (azcore's default)", public.RetryDelay)
	}
	fast := public
	fast.RetryDelay = time.Millisecond
	own := CredentialOptions{Retry: policy.RetryOptions{RetryDelay: time.Second}}
	for _, tc := range []struct {
		name  string
		cloud Cloud
		opts  CredentialOptions
		want  time.Duration
	}{
		{"production cloud", public, CredentialOptions{}, 0},
		{"cloud's delay", fast, CredentialOptions{}, time.Millisecond},
		{"options win", fast, own, time.Second},
	} {
		if got := tc.cloud.ClientOptions(tc.opts).Retry.RetryDelay; got != tc.want {
			t.Errorf("%s: token retry delay %s, want %s", tc.name, got, tc.want)
		}
		g, err := NewGraph(tc.cloud, staticCredential{}, GraphOptions{RetryDelay: tc.opts.Retry.RetryDelay})
		if err != nil {
			t.Fatal(err)
		}
		if g.opts.RetryDelay != tc.want {
			t.Errorf("%s: Graph retry delay %s, want %s", tc.name, g.opts.RetryDelay, tc.want)
		}
	}
}
