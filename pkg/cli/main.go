package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"golang.org/x/term"

	"github.com/entraclaw/entraclaw-cli/pkg/keystore"
)

// Stdio is the streams a command talks to; tests substitute their own.
type Stdio struct {
	In  io.Reader
	Out io.Writer
	Err io.Writer
	// InTTY, OutTTY and ErrTTY say whether stdin / stdout / stderr are terminals
	// (prompts, colour, the status line).
	InTTY, OutTTY, ErrTTY bool
	// NoColor is NO_COLOR being set: no colour anywhere.
	NoColor bool
}

// OSStdio returns the process's standard streams.
func OSStdio() Stdio {
	_, noColor := os.LookupEnv("NO_COLOR")
	return Stdio{In: os.Stdin, Out: os.Stdout, Err: os.Stderr,
		InTTY: isTerminal(os.Stdin), OutTTY: isTerminal(os.Stdout), ErrTTY: isTerminal(os.Stderr), NoColor: noColor}
}

// isTerminal asks the terminal driver (termios / console mode), so /dev/null, which is a
// character device too, does not count as a terminal.
func isTerminal(f *os.File) bool { return term.IsTerminal(int(f.Fd())) }

// Command is what every binary runs: parse args, do the work, write the result to io.Out.
type Command func(ctx context.Context, args []string, io Stdio) error

// Main runs cmd with the process's streams and arguments and returns the exit code.
// cmd/*/main.go is `os.Exit(cli.Main("name", cli.RunX))`. The first SIGINT/SIGTERM cancels
// the context (keyring waits, locks and HTTP requests watch it; the run ends with exit
// 130); a second one ends the process at once with exit 130, whatever it is waiting for.
func Main(name string, cmd Command) int {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	go handleSignals(sigs, cancel, func() {
		fmt.Fprintf(os.Stderr, "%s: interrupted again: exiting now\n", name)
		os.Exit(ExitInterrupted)
	})
	code := Run(ctx, name, cmd, os.Args[1:], OSStdio())
	// A keyring call given up on (Ctrl-C, a timeout) still runs: let it finish before the
	// process goes, rather than vanish from the Secret Service mid-call.
	keystore.Settle(settleKeyring)
	return code
}

// settleKeyring bounds how long an exiting binary waits for keyring calls in flight.
const settleKeyring = 500 * time.Millisecond

// handleSignals cancels the run at the first signal and calls exit at the second.
func handleSignals(sigs <-chan os.Signal, cancel func(), exit func()) {
	if _, ok := <-sigs; !ok {
		return
	}
	cancel()
	if _, ok := <-sigs; !ok {
		return
	}
	exit()
}

// Run is Main with explicit arguments and streams.
func Run(ctx context.Context, name string, cmd Command, args []string, stdio Stdio) int {
	err := cmd(ctx, args, stdio)
	if err == nil {
		return ExitOK
	}
	if errors.Is(err, flag.ErrHelp) {
		return ExitOK
	}
	if errors.Is(err, errVersionPrinted) {
		return ExitOK
	}
	code, msg, hint := Classify(err)
	if ctx.Err() != nil && code == ExitFailure {
		// Interrupted, though the error that ended the run does not say so (an SDK that
		// flattened context.Canceled into text).
		code = ExitInterrupted
	}
	p := newPainter(stdio)
	fmt.Fprintf(stdio.Err, "%s: %s %s\n", name, p.red("error:"), msg)
	if hint != "" {
		fmt.Fprintf(stdio.Err, "%s: hint: %s\n", name, hint)
	}
	return code
}

// painter colours text for terminals only, and never when NO_COLOR is set.
type painter struct{ on bool }

func newPainter(stdio Stdio) painter {
	return painter{on: stdio.ErrTTY && !stdio.NoColor}
}

func (p painter) wrap(code, s string) string {
	if !p.on {
		return s
	}
	return "\x1b[" + code + "m" + s + "\x1b[0m"
}

func (p painter) red(s string) string    { return p.wrap("31", s) }
func (p painter) yellow(s string) string { return p.wrap("33", s) }
func (p painter) green(s string) string  { return p.wrap("32", s) }
