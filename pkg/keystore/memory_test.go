package keystore

import (
	"errors"
	"testing"
)

func TestMemoryBackendThroughStore(t *testing.T) {
	b := NewMemoryBackend()
	s := New("svc-cert", WithBackend(b), WithOS("linux"))
	if _, err := s.GetBundle("t1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("empty store: %v", err)
	}
	if err := s.PutBundle("t1", testBundle(t)); err != nil {
		t.Fatal(err)
	}
	if b.Writes() == 0 {
		t.Error("a write was not counted")
	}
	locked := errors.New("failed to unlock correct collection '/org/freedesktop/secrets/collection/login'")
	b.FailWrites(locked)
	var ue *UnavailableError
	if err := s.Probe(); !errors.As(err, &ue) {
		t.Errorf("Probe with failing writes: %v, want an UnavailableError", err)
	}
	b.FailWrites(nil)
	if err := s.DeleteBundle("t1"); err != nil {
		t.Fatal(err)
	}
	if has, err := s.HasBundle("t1"); has || err != nil {
		t.Errorf("after delete: has=%v err=%v", has, err)
	}
}
