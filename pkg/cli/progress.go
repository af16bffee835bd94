package cli

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/term"
)

// StatusLine says what a long wait is waiting for, on stderr, without flooding it:
//
//   - on a terminal, one line updated in place (\r, erase to end of line) with the elapsed
//     time and what is pending, redrawn every second ("name: waiting 12s for …");
//   - off a terminal (CI logs, files), one line per change of state, never one per poll,
//     and while the state holds, a "still waiting" line every progressEvery (10 s), so
//     that a log never looks hung.
//
// Start sets the clock and the limit of the wait: the lines off a terminal then also
// say how long is left at most ("20s elapsed, up to 2m40s left").
//
// Use it around a polling loop:
//
//	sl := cli.NewStatusLine(stdio.Err, stdio.ErrTTY, "entraclaw-migrate")
//	defer sl.Done("")
//	for … {
//		sl.Update("Entra ID to accept certificate 1a2b… (3 of 25 roles missing)")
//		…
//	}
//	sl.Done("Entra ID accepted the certificate after 42s.")
//
// Update's text is also the state: a poll that reports the same text prints nothing off
// a terminal. UpdateDetail separates the state from a detail that may change per poll.
// All methods are safe for concurrent use; after Done, Update does nothing.
type StatusLine struct {
	mu     sync.Mutex
	w      io.Writer
	tty    bool
	prefix string
	start  time.Time
	limit  time.Duration // 0: no limit known
	now    func() time.Time

	state, text string // current state and the text shown for it
	printed     string // off a terminal: the last state printed
	drawn       bool   // on a terminal: a line is on screen
	ticking     bool
	printedLine chan struct{} // off a terminal: a line was printed, the next is due later
	every       time.Duration // how often tick redraws (terminal) or repeats (off one)
	stop        chan struct{}
	done        bool
}

// statusTick is how often the terminal line is redrawn with the new elapsed time.
const statusTick = time.Second

// progressEvery is how often, off a terminal, a wait says it is still waiting when its
// state has not changed. A variable so that tests can shorten it (export_test.go does for
// the commands the end-to-end tests run).
var progressEvery = 10 * time.Second

// NewStatusLine returns a StatusLine writing to w. tty says whether w is a terminal
// (Stdio.ErrTTY); prefix is the binary's name.
func NewStatusLine(w io.Writer, tty bool, prefix string) *StatusLine {
	every := progressEvery
	if tty {
		every = statusTick
	}
	return &StatusLine{w: w, tty: tty, prefix: prefix, start: time.Now(), now: time.Now,
		printedLine: make(chan struct{}, 1), every: every, stop: make(chan struct{})}
}

// Start restarts the clock at the beginning of the wait and sets how long the wait may
// last (0: unknown). A wait's owner calls it when the clock of the wait starts, which
// may be later than NewStatusLine.
func (s *StatusLine) Start(limit time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.start, s.limit = s.now(), limit
}

// Update says what is pending now, e.g. "token: 3 of 25 roles missing".
func (s *StatusLine) Update(pending string) { s.UpdateDetail(pending, "") }

// UpdateDetail is Update with a detail shown after the state but not compared: off a
// terminal a new line is printed only when state changes.
func (s *StatusLine) UpdateDetail(state, detail string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done {
		return
	}
	s.state, s.text = state, state
	if detail != "" {
		s.text = state + " (" + detail + ")"
	}
	if !s.ticking {
		s.ticking = true
		go s.tick()
	}
	if s.tty {
		s.drawLocked()
		return
	}
	if state != s.printed {
		s.printed = state
		s.printLocked("waiting for")
		select {
		case s.printedLine <- struct{}{}:
		default:
		}
	}
}

// printLocked writes one line off a terminal: "name: waiting for X (12s elapsed, up to
// 2m48s left)".
func (s *StatusLine) printLocked(verb string) {
	elapsed := s.elapsedLocked()
	when := elapsed.String() + " elapsed"
	if s.limit > 0 {
		when += ", up to " + max(s.limit.Round(time.Second)-elapsed, 0).String() + " left"
	}
	fmt.Fprintf(s.w, "%s: %s %s (%s)\n", s.prefix, verb, s.text, when)
}

// Updated reports whether Update was ever called: whether there was anything to wait for.
func (s *StatusLine) Updated() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state != ""
}

// Elapsed is the time since the StatusLine was made, rounded to the second.
func (s *StatusLine) Elapsed() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.elapsedLocked()
}

func (s *StatusLine) elapsedLocked() time.Duration { return s.now().Sub(s.start).Round(time.Second) }

// Done ends the status line: on a terminal the line is erased; then final, if not
// empty, is printed as one line. Calling it again does nothing.
func (s *StatusLine) Done(final string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done {
		return
	}
	s.done = true
	close(s.stop)
	if s.tty && s.drawn {
		io.WriteString(s.w, "\r\x1b[K")
	}
	if final != "" {
		fmt.Fprintf(s.w, "%s: %s\n", s.prefix, final)
	}
}

// tick redraws the terminal line every statusTick; off a terminal it prints a "still
// waiting" line when progressEvery has passed since the last line.
func (s *StatusLine) tick() {
	every := s.every
	t := time.NewTimer(every)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-s.printedLine:
			t.Reset(every)
		case <-t.C:
			s.mu.Lock()
			switch {
			case s.done:
			case s.tty:
				s.drawLocked()
			default:
				s.printLocked("still waiting for")
			}
			s.mu.Unlock()
			t.Reset(every)
		}
	}
}

// drawLocked rewrites the terminal line, clipped to the terminal's width so that it never
// wraps (a wrapped line cannot be rewritten with \r).
func (s *StatusLine) drawLocked() {
	// The elapsed time comes first: clipping a long line must not cut it off.
	line := fmt.Sprintf("%s: waiting %s for %s", s.prefix, s.elapsedLocked(), s.text)
	width := 80
	if f, ok := s.w.(*os.File); ok {
		if w, _, err := term.GetSize(int(f.Fd())); err == nil && w > 0 {
			width = w
		}
	}
	if r := []rune(line); len(r) > width-1 {
		line = string(r[:width-2]) + "…"
	}
	io.WriteString(s.w, "\r\x1b[K"+line)
	s.drawn = true
}

// clip shortens s to n runes with an ellipsis, on one line.
func clip(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}
