package entra

import (
	"testing"
	"time"
)

// TestProductionBuildHasNoTestKnobs: a build without the test harness's -ldflags (this
// test binary, make build, go install) has no test knob set, so the retry backoff is
// azcore's default.
func TestProductionBuildHasNoTestKnobs(t *testing.T) {
	if testRetryDelay != "" || defaultRetryDelay() != 0 {
		t.Fatalf("testRetryDelay is %q in a plain build", testRetryDelay)
	}
	if got := (Cloud{}).ClientOptions(CredentialOptions{}).Retry.RetryDelay; got != 0 {
		t.Fatalf("token retry delay %s in a plain build, want azcore's default (0)", got)
	}
	for in, want := range map[string]time.Duration{"1ms": time.Millisecond, "bogus": 0, "-1s": 0} {
		testRetryDelay = in
		if got := defaultRetryDelay(); got != want {
			t.Errorf("testRetryDelay %q: %s, want %s", in, got, want)
		}
	}
	testRetryDelay = ""
}
