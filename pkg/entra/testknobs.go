package entra

import "time"

// testRetryDelay is a test-only knob: the base of azcore's retry backoff (token requests
// and Graph) when the caller sets none. It can only be set at link time, and only the
// end-to-end test harness does (pkg/cli/harness_test.go builds the binaries with
// -ldflags "-X github.com/entraclaw/entraclaw-cli/pkg/entra.testRetryDelay=1ms"), so that
// the fault matrix does not sit in the default backoff (800 ms, doubling) for tens of
// seconds. Production binaries (make build/install, release archives, go install) leave it
// empty, and no flag, environment variable or file can change it.
var testRetryDelay string

// defaultRetryDelay is the retry base when the caller sets none: 0 (azcore's default)
// unless the test harness linked in testRetryDelay.
func defaultRetryDelay() time.Duration {
	if testRetryDelay == "" {
		return 0
	}
	d, err := time.ParseDuration(testRetryDelay)
	if err != nil || d <= 0 {
		return 0
	}
	return d
}
