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
//   - off a terminal (CI logs, files), one line per change of state, never one per poll.
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
	now    func() time.Time

	state, text string // current state and the text shown for it
	printed     string // off a terminal: the last state printed
	drawn       bool   // on a terminal: a line is on screen
	ticking     bool
	stop        chan struct{}
	done        bool
}

// statusTick is how often the terminal line is redrawn with the new elapsed time.
const statusTick = time.Second

// NewStatusLine returns a StatusLine writing to w. tty says whether w is a terminal
// (Stdio.ErrTTY); prefix is the binary's name.
func NewStatusLine(w io.Writer, tty bool, prefix string) *StatusLine {
	return &StatusLine{w: w, tty: tty, prefix: prefix, start: time.Now(), now: time.Now, stop: make(chan struct{})}
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
	if s.tty {
		s.drawLocked()
		if !s.ticking {
			s.ticking = true
			go s.tick()
		}
		return
	}
	if state != s.printed {
		s.printed = state
		fmt.Fprintf(s.w, "%s: waiting for %s (%s elapsed)\n", s.prefix, s.text, s.elapsedLocked())
	}
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

func (s *StatusLine) tick() {
	t := time.NewTicker(statusTick)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			s.mu.Lock()
			if !s.done {
				s.drawLocked()
			}
			s.mu.Unlock()
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
