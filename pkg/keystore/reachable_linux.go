package keystore

import (
	"context"
	"errors"
	"slices"
	"time"

	dbus "github.com/godbus/dbus/v5"
)

// SecretServiceReachable reports, within timeout, whether the session bus has a Secret
// Service: org.freedesktop.secrets owned, or activatable on first use. It never starts a
// bus (no dbus-launch) and never unlocks or prompts. The error is an *UnavailableError.
func SecretServiceReachable(timeout time.Duration) error {
	unavailable := func(err error) error { return &UnavailableError{Backend: NameSecretService, Err: err} }
	if err := checkSessionBus(); err != nil {
		return unavailable(err)
	}
	_, err := callWithTimeout(context.Background(), timeout, func() (struct{}, error) {
		conn, err := dbus.SessionBus()
		if err != nil {
			return struct{}{}, err
		}
		bus := conn.BusObject()
		var owned bool
		if err := bus.Call("org.freedesktop.DBus.NameHasOwner", 0, ssName).Store(&owned); err != nil || owned {
			return struct{}{}, err
		}
		var activatable []string
		if err := bus.Call("org.freedesktop.DBus.ListActivatableNames", 0).Store(&activatable); err != nil {
			return struct{}{}, err
		}
		if !slices.Contains(activatable, ssName) {
			return struct{}{}, errors.New("no Secret Service on the session bus (" + ssName + " has no owner and is not activatable)")
		}
		return struct{}{}, nil
	})
	if err != nil {
		return unavailable(err)
	}
	return nil
}
