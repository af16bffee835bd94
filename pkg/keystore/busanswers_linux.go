package keystore

import (
	"fmt"
	"os"
	"sync"
	"time"

	dbus "github.com/godbus/dbus/v5"
)

// busAnswerTimeout bounds the connection to the session bus (dial, authentication, Hello):
// a socket whose owner accepts and never answers (a wedged dbus-daemon, some other server
// at that path) must fail the run within 2 s, not at the keyring call's DefaultTimeout,
// which is sized for an unlock prompt.
const busAnswerTimeout = 1500 * time.Millisecond

// sessionBusAnswers connects go-keyring's shared session-bus connection once per process,
// bounded by busAnswerTimeout. A connection that fails outright is left for go-keyring to
// report in its own words; only silence is an error here.
var sessionBusAnswers = sync.OnceValue(func() error {
	done := make(chan struct{})
	go func() {
		_, _ = dbus.SessionBus()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-time.After(busAnswerTimeout):
		return fmt.Errorf("%w: the session bus at %s did not answer within %s", errNoSessionBus, os.Getenv("DBUS_SESSION_BUS_ADDRESS"), busAnswerTimeout)
	}
})
