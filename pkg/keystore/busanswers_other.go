//go:build !linux

package keystore

// sessionBusAnswers is Linux's bound on a silent session bus; elsewhere go-keyring either
// uses no D-Bus or (the BSDs) keeps its own behaviour.
func sessionBusAnswers() error { return nil }
