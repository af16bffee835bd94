package cli

import "time"

// UseTestTimings shortens the pauses of a command the end-to-end tests run. The harness's
// command wrappers (harness_test.go) call it in the child process, before Main: azcore's
// retry backoff starts at 1 ms instead of 800 ms (the fault matrix's 5xx, reset and TLS
// cases retry 3-4 times), verify -wait polls every 100 ms instead of 3 s, and a wait off a
// terminal repeats its "still waiting" line every 250 ms instead of 10 s. What is retried
// and how often is unchanged; only the pauses shrink. Being test code, it is in no binary
// that make, the release script or go install builds.
func UseTestTimings() {
	retryDelay = time.Millisecond
	verifyWaitInterval = 100 * time.Millisecond
	progressEvery = 250 * time.Millisecond
}
