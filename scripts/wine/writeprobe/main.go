// Command writeprobe writes lines to its stdout and stderr the way the entraclaw binaries do
// (a report on stdout, then an error line on stderr) and says what each write returned. It is
// the reproduction for the Wine "exit 1 with empty stdout and stderr" flake: built with
// GOOS=windows and run under Wine with stdout/stderr connected to a full file system, a
// pipe, /dev/full..., it shows which Unix condition becomes which Windows error.
//
//	writeprobe [-lines N] [-size BYTES] [-log FILE]
//
// It exits 0 when every write succeeded and 1 (like cli.Run on an error) when one failed.
// -log names a file (a Windows path under Wine) that gets the outcome of each write, so the
// result is visible even when neither stdout nor stderr can be written.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"syscall"
)

func main() {
	lines := flag.Int("lines", 4, "lines to write to stdout")
	size := flag.Int("size", 80, "bytes per line")
	logPath := flag.String("log", "", "file that gets the outcome of each write")
	flag.Parse()
	os.Exit(run(*lines, *size, *logPath))
}

func run(lines, size int, logPath string) int {
	logf := func(format string, args ...any) {}
	if logPath != "" {
		if f, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644); err == nil {
			defer f.Close()
			logf = func(format string, args ...any) { fmt.Fprintf(f, format+"\n", args...) }
		}
	}
	line := strings.Repeat("x", max(size-1, 0)) + "\n"
	var reportErr error
	for i := 0; i < lines && reportErr == nil; i++ {
		_, reportErr = os.Stdout.WriteString(line)
	}
	if reportErr == nil {
		logf("stdout: %d lines written", lines)
		return 0
	}
	logf("stdout: %s", describe(reportErr))
	_, err := fmt.Fprintf(os.Stderr, "writeprobe: error: %v\n", reportErr)
	if err != nil {
		logf("stderr: %s", describe(err))
	} else {
		logf("stderr: error line written")
	}
	return 1
}

// describe names the Windows error number behind err, if there is one.
func describe(err error) string {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return fmt.Sprintf("%v (errno %d)", err, uintptr(errno))
	}
	return err.Error()
}
