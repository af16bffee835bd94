package entra

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// The rule entraclaw-migrate names this machine's certificate by, and verify finds it by.
func TestKeyNameFor(t *testing.T) {
	for host, want := range map[string]string{
		"build-01":               "CN=entraclaw-provisioner (build-01)",
		"":                       "CN=entraclaw-provisioner",
		strings.Repeat("h", 100): "CN=entraclaw-provisioner (" + strings.Repeat("h", 90-len("CN=entraclaw-provisioner (")),
	} {
		if got := keyNameFor(host); got != want {
			t.Errorf("keyNameFor(%q) = %q, want %q", host, got, want)
		}
	}
	if got := MachineKeyName(); !strings.HasPrefix(got, "CN=entraclaw-provisioner") {
		t.Errorf("MachineKeyName() = %q", got)
	}
}

func TestNotYet(t *testing.T) {
	for _, tc := range []struct {
		codes []int
		want  int
	}{{[]int{700027}, 700027}, {[]int{7000229}, 7000229}, {[]int{700016}, 700016}, {[]int{7000215}, 0}} {
		err := fmt.Errorf("reading the app: %w", &AuthError{Summary: "x", Err: errors.New("x"), STS: &STSError{Status: 400, Codes: tc.codes}})
		if code, ok := NotYet(err); code != tc.want || ok != (tc.want != 0) {
			t.Errorf("NotYet(AADSTS%v) = %d, %v", tc.codes, code, ok)
		}
	}
	if _, ok := NotYet(errors.New("AADSTS700027 in plain text")); ok {
		t.Error("NotYet believed an error that is not an STS answer")
	}
}
