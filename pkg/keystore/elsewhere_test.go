package keystore

import (
	"errors"
	"testing"
)

func TestFindBundle(t *testing.T) {
	const other = "22222222-3333-4444-5555-666666666666"
	f := newFake("linux")
	s := newTestStore(t, "linux", f)
	if err := New("entraclaw-fake-cert", WithBackend(f), WithOS("linux")).PutBundle(other, testBundle(t)); err != nil {
		t.Fatal(err)
	}
	places := []Place{{testService, other}, {"entraclaw-fake-cert", testTenant}, {"entraclaw-fake-cert", other}}
	var read []string
	f.errFor = func(op, user string) error {
		if op == "get" {
			read = append(read, user)
		}
		return nil
	}
	if got := s.FindBundle(places...); got != 2 {
		t.Errorf("FindBundle = %d, want 2", got)
	}
	if len(read) != 3 {
		t.Errorf("%d keyring reads, want one per place tried (3): %v", len(read), read)
	}
	if got := s.FindBundle(places[:2]...); got != -1 {
		t.Error("found a bundle where there is none")
	}

	// A keyring that cannot be read is not asked again, and finds nothing.
	read = nil
	f.errFor = func(op, user string) error {
		if op == "get" {
			read = append(read, user)
		}
		return errors.New("failed to unlock correct collection '/org/freedesktop/secrets/collection/login'")
	}
	if got := s.FindBundle(places...); got != -1 || len(read) != 1 {
		t.Errorf("unreadable keyring: found %d after %d reads, want -1 after 1", got, len(read))
	}
	// Reads only: nothing was written.
	if n := len(f.setOrder()); n != 1 {
		t.Errorf("%d writes, want only the setup's 1", n)
	}
}
