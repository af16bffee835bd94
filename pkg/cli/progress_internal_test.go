package cli

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a bytes.Buffer safe for the StatusLine's ticker goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func fakeClock(sl *StatusLine) *time.Time {
	now := sl.start
	sl.now = func() time.Time { return now }
	return &now
}

// Off a terminal: one line per change of state, none per repeated poll, then the verdict.
func TestStatusLinePlain(t *testing.T) {
	var out syncBuffer
	sl := NewStatusLine(&out, false, "entraclaw-migrate")
	now := fakeClock(sl)
	sl.Update("Entra ID to accept certificate ab12")
	*now = now.Add(3 * time.Second)
	sl.Update("Entra ID to accept certificate ab12")
	sl.UpdateDetail("roles", "3 of 25 missing")
	*now = now.Add(3 * time.Second)
	sl.UpdateDetail("roles", "1 of 25 missing") // same state, new detail: no line
	*now = now.Add(4 * time.Second)
	sl.Done("Entra ID accepted the certificate after 10s")
	sl.Done("twice")
	sl.Update("after done")
	want := "entraclaw-migrate: waiting for Entra ID to accept certificate ab12 (0s elapsed)\n" +
		"entraclaw-migrate: waiting for roles (3 of 25 missing) (3s elapsed)\n" +
		"entraclaw-migrate: Entra ID accepted the certificate after 10s\n"
	if got := out.String(); got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
	if strings.Contains(out.String(), "\r") {
		t.Error("a carriage return off a terminal")
	}
}

// Off a terminal, a state that holds is repeated every progressEvery as a "still waiting"
// line with the elapsed and the remaining time; Done stops them.
func TestStatusLinePlainProgress(t *testing.T) {
	defer func(d time.Duration) { progressEvery = d }(progressEvery)
	progressEvery = 20 * time.Millisecond
	var out syncBuffer
	sl := NewStatusLine(&out, false, "entraclaw-migrate")
	now := fakeClock(sl)
	advance := func(d time.Duration) { sl.mu.Lock(); *now = now.Add(d); sl.mu.Unlock() }
	advance(5 * time.Second) // the run before the wait: not part of it
	sl.Start(3 * time.Minute)
	sl.Update("Entra ID to accept certificate ab12")
	advance(20 * time.Second)
	waitFor(t, &out, "still waiting for Entra ID to accept certificate ab12 (20s elapsed, up to 2m40s left)\n")
	advance(3 * time.Minute)
	waitFor(t, &out, "(3m20s elapsed, up to 0s left)\n")
	sl.Done("gave up")
	n := strings.Count(out.String(), "\n")
	time.Sleep(5 * progressEvery)
	got := out.String()
	if strings.Count(got, "\n") != n || !strings.HasSuffix(got, "entraclaw-migrate: gave up\n") {
		t.Errorf("a line after Done:\n%s", got)
	}
	if !strings.HasPrefix(got, "entraclaw-migrate: waiting for Entra ID to accept certificate ab12 (0s elapsed, up to 3m0s left)\n") {
		t.Errorf("first line:\n%s", got)
	}
	for _, line := range strings.Split(strings.TrimSuffix(got, "\n"), "\n")[1:] {
		if !strings.HasPrefix(line, "entraclaw-migrate: still waiting for Entra ID to accept certificate ab12 (") && line != "entraclaw-migrate: gave up" {
			t.Errorf("unexpected line %q", line)
		}
	}
}

// The interval counts from the last line printed: a change of state postpones the next
// "still waiting" line, so lines are never closer than progressEvery when nothing changes.
func TestStatusLinePlainProgressAfterChange(t *testing.T) {
	defer func(d time.Duration) { progressEvery = d }(progressEvery)
	progressEvery = time.Second
	var out syncBuffer
	sl := NewStatusLine(&out, false, "x")
	fakeClock(sl)
	sl.Update("a")
	time.Sleep(600 * time.Millisecond)
	sl.Update("b") // a line now: the next "still waiting" is due 1 s from here, not from "a"
	time.Sleep(600 * time.Millisecond)
	if got := out.String(); strings.Contains(got, "still waiting") {
		t.Errorf("a still-waiting line 1.2 s after the first line but only 0.6 s after a change:\n%s", got)
	}
	waitFor(t, &out, "x: still waiting for b (0s elapsed)\n")
	sl.Done("")
}

// The production binary repeats a held state every 10 s off a terminal.
func TestProgressEveryDefault(t *testing.T) {
	if progressEvery != 10*time.Second {
		t.Fatalf("progressEvery is %s, want 10s", progressEvery)
	}
}

// waitFor waits until out contains want, bounded by 10 s (a loaded machine can be slow).
func waitFor(t *testing.T, out *syncBuffer, want string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(out.String(), want); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no %q within 10s:\n%s", want, out.String())
		}
	}
}

// On a terminal: every update rewrites the one line in place (\r + erase), the elapsed
// time is redrawn by itself, and Done erases the line before the verdict.
func TestStatusLineTerminal(t *testing.T) {
	var out syncBuffer
	sl := NewStatusLine(&out, true, "entraclaw-verify")
	now := fakeClock(sl)
	sl.Update("token")
	sl.mu.Lock()
	*now = now.Add(2 * time.Second)
	sl.mu.Unlock()
	// One redraw by the ticker: wait for it (not a fixed sleep, which a loaded machine
	// can outrun), bounded well past statusTick.
	for deadline := time.Now().Add(statusTick + 10*time.Second); !strings.Contains(out.String(), "waiting 2s for token"); {
		if time.Now().After(deadline) {
			t.Fatalf("the ticker did not redraw the elapsed time within %s: %q", statusTick+10*time.Second, out.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	sl.Update("token")
	sl.Done("all 4 checks pass after 2s")
	got := out.String()
	if n := strings.Count(got, "\r\x1b[K"); n < 4 {
		t.Errorf("want at least 4 in-place rewrites (2 updates, 1 tick, 1 erase), got %d: %q", n, got)
	}
	if strings.Count(got, "\n") != 1 || !strings.HasSuffix(got, "\r\x1b[Kentraclaw-verify: all 4 checks pass after 2s\n") {
		t.Errorf("want the line erased, then one verdict line: %q", got)
	}
	if !strings.Contains(got, "\r\x1b[Kentraclaw-verify: waiting 2s for token") {
		t.Errorf("the ticker did not redraw the elapsed time: %q", got)
	}
	if !strings.HasPrefix(got, "\r\x1b[Kentraclaw-verify: waiting 0s for token") {
		t.Errorf("first draw: %q", got)
	}
}

// A line wider than the terminal is clipped so that \r can rewrite it.
func TestStatusLineClipped(t *testing.T) {
	var out syncBuffer
	sl := NewStatusLine(&out, true, "x")
	sl.Update(strings.Repeat("a", 300))
	sl.Done("")
	for _, line := range strings.Split(out.String(), "\r\x1b[K") {
		if n := len([]rune(line)); n > 79 {
			t.Errorf("drawn line of %d runes: %q", n, line)
		}
	}
}

func TestBuildInfoStamped(t *testing.T) {
	defer func(v, c, d string) { version, commit, date = v, c, d }(version, commit, date)
	version, commit, date = "v1.2.3", "0123456789abcdef0123456789abcdef01234567", "2026-11-30T20:00:00Z"
	var out bytes.Buffer
	if err := PrintVersion(&out, "entraclaw-verify", false); err != errVersionPrinted {
		t.Fatal(err)
	}
	for _, want := range []string{"entraclaw-verify v1.2.3\n", "  commit:   0123456789abcdef0123456789abcdef01234567\n", "  built:    2026-11-30T20:00:00Z\n", "  go:       go1.", "  platform: "} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("-version lacks %q:\n%s", want, out.String())
		}
	}
	out.Reset()
	_ = PrintVersion(&out, "entraclaw-verify", true)
	if !strings.Contains(out.String(), `"version": "v1.2.3"`) || !strings.Contains(out.String(), `"commit": "0123456789abcdef0123456789abcdef01234567"`) {
		t.Errorf("-version -o json:\n%s", out.String())
	}
}
