package provision

import (
	"context"
	"fmt"
	"io"
	"strings"
)

// step is one named step of a migration or a rollback. Each step reads what it
// needs, then makes its changes through (*run).change, so that a dry run is
// handled in that one place and an interrupted run knows what it did.
type step struct {
	name string
	run  func(context.Context) error
}

// run is what Migrate and Rollback share: the progress writer, the summary's
// action and warning lists, and dry-run handling.
type run struct {
	out      io.Writer
	warnTo   func(string) // where warnings go as events; nil: out, as "warning: …"
	dryRun   bool
	actions  *[]string
	warnings *[]string
	// finish says how to complete a run interrupted before the steps named.
	finish func(pending []string) string
}

// say prints one progress line.
func (r *run) say(format string, args ...any) {
	fmt.Fprintf(r.out, format+"\n", args...)
}

// warn records a warning in the summary and reports it.
func (r *run) warn(format string, args ...any) {
	w := fmt.Sprintf(format, args...)
	*r.warnings = append(*r.warnings, w)
	r.alert("%s", w)
}

// alert reports a warning without recording it: to the caller's warning sink as an
// event, so nobody has to find warnings in the progress text.
func (r *run) alert(format string, args ...any) {
	w := fmt.Sprintf(format, args...)
	if r.warnTo != nil {
		r.warnTo(w)
		return
	}
	r.say("warning: %s", w)
}

// change makes one change, described in the imperative ("upload certificate X to
// the app"), and records it; a dry run only records and prints the plan.
func (r *run) change(desc string, apply func() error) error {
	if r.dryRun {
		*r.actions = append(*r.actions, desc)
		r.say("dry run: would %s", desc)
		return nil
	}
	if err := apply(); err != nil {
		return err
	}
	*r.actions = append(*r.actions, desc)
	return nil
}

// runSteps runs steps in order. A step that fails because ctx ended (Ctrl-C,
// SIGTERM) becomes an interrupted error (exit 130) that says what is done, what
// is pending, and how to finish.
func (r *run) runSteps(ctx context.Context, steps []step) error {
	for i, s := range steps {
		err := ctx.Err()
		if err == nil {
			err = s.run(ctx)
		}
		switch {
		case err == nil:
			continue
		case ctx.Err() == nil:
			return err
		}
		return r.interrupted(stepNames(steps[i:]))
	}
	return nil
}

// interrupted is the error of a run stopped before the steps in pending.
func (r *run) interrupted(pending []string) *Error {
	done := "nothing changed"
	if len(*r.actions) > 0 {
		done = "done: " + strings.Join(*r.actions, "; ")
	}
	return &Error{
		code: exitInterrupted,
		msg:  fmt.Sprintf("interrupted; %s; pending: %s", done, strings.Join(pending, ", ")),
		hint: r.finish(pending),
	}
}

func stepNames(steps []step) []string {
	names := make([]string, len(steps))
	for i, s := range steps {
		names[i] = s.name
	}
	return names
}
