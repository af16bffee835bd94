package keystore

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"

	"github.com/zalando/go-keyring"
)

// systemBackend is go-keyring's OS keyring.
type systemBackend struct{}

func (systemBackend) Get(svc, user string) (string, error) {
	if err := checkSessionBus(); err != nil {
		return "", err
	}
	return keyring.Get(svc, user)
}

func (systemBackend) Set(svc, user, v string) error {
	if err := checkSessionBus(); err != nil {
		return err
	}
	return keyring.Set(svc, user, v)
}

func (systemBackend) Delete(svc, user string) error {
	if err := checkSessionBus(); err != nil {
		return err
	}
	return keyring.Delete(svc, user)
}

var errNoSessionBus = errors.New("no D-Bus session bus")

// findSessionBus fails, where go-keyring uses D-Bus, when godbus would find
// no session bus address and fall back to running dbus-launch: that starts a
// dbus-daemon and a gnome-keyring-daemon that outlive the process, and the
// call fails anyway. It looks where godbus looks.
func findSessionBus() error {
	switch runtime.GOOS {
	case "linux", "freebsd", "openbsd", "netbsd", "dragonfly":
	default:
		return nil
	}
	if addr := os.Getenv("DBUS_SESSION_BUS_ADDRESS"); addr != "" && addr != "autolaunch:" {
		return nil
	}
	runDir := fmt.Sprintf("/run/user/%d", os.Getuid())
	for _, name := range []string{"bus", "dbus-session"} {
		if _, err := os.Stat(filepath.Join(runDir, name)); !errors.Is(err, fs.ErrNotExist) {
			return nil
		}
	}
	return fmt.Errorf("%w (DBUS_SESSION_BUS_ADDRESS is unset and %s/bus does not exist)", errNoSessionBus, runDir)
}

// checkSessionBus fails, where go-keyring uses D-Bus, when godbus would find no session bus
// address and fall back to running dbus-launch (see findSessionBus), and when the bus it
// finds does not answer within busAnswerTimeout (sessionBusAnswers).
func checkSessionBus() error {
	if err := findSessionBus(); err != nil {
		return err
	}
	return sessionBusAnswers()
}
