package verify

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"
)

// Wait runs the checks every interval until they all pass or d has elapsed, and
// returns the last report. Each failing attempt is passed to Deps.Progress when set,
// else printed as one line to Deps.Stderr. The error is Run's, or the context's when it
// ends the wait.
func Wait(ctx context.Context, cfg Config, deps Deps, d, interval time.Duration) (*Report, error) {
	out := deps.Stderr
	if out == nil {
		out = io.Discard
	}
	if interval <= 0 {
		interval = time.Second
	}
	start := time.Now()
	deadline := start.Add(d)
	for attempt := 1; ; attempt++ {
		rep, err := Run(ctx, cfg, deps)
		if err != nil || rep.OK {
			return rep, err
		}
		if throttled(rep) {
			// Entra ID or Graph asked us to slow down: ask half as often from now on.
			interval = min(2*interval, maxWaitInterval)
		}
		left := time.Until(deadline)
		if deps.Progress != nil {
			deps.Progress(rep)
		} else {
			next := "giving up"
			if left > 0 {
				next = "retrying in " + min(interval, left).Round(time.Millisecond).String()
			}
			fmt.Fprintf(out, "entraclaw-verify: attempt %d (%s elapsed): %s; %s\n",
				attempt, time.Since(start).Round(time.Second), failingSummary(rep), next)
		}
		if left <= 0 {
			return rep, nil
		}
		timer := time.NewTimer(min(interval, left))
		select {
		case <-ctx.Done():
			timer.Stop()
			return rep, ctx.Err()
		case <-timer.C:
		}
	}
}

// maxWaitInterval caps the interval Wait grows to after throttled attempts.
const maxWaitInterval = time.Minute

// throttled reports whether a check of rep was throttled.
func throttled(rep *Report) bool {
	for _, c := range rep.Checks {
		if c.Throttled {
			return true
		}
	}
	return false
}

// failingSummary names the failing checks and the first one's detail, clipped, and the
// checks not yet checked.
func failingSummary(rep *Report) string {
	var names []string
	first := ""
	for _, c := range rep.Checks {
		if c.OK || c.NotChecked {
			continue
		}
		names = append(names, c.Name)
		if first == "" {
			first = c.Name + ": " + c.Detail
		}
	}
	if len(first) > 200 {
		first = first[:200] + "…"
	}
	msg := fmt.Sprintf("%d of %d checks failing (%s) — %s", len(names), len(rep.Checks), strings.Join(names, ", "), first)
	if nc := rep.NotChecked(); len(nc) > 0 {
		msg += "; not yet checked: " + strings.Join(nc, ", ")
	}
	return msg
}
