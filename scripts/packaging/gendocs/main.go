// Command gendocs writes the man pages and shell completion scripts of the four tools,
// made from each one's flag table (the one -h prints), into a directory:
//
//	go run ./scripts/packaging/gendocs -out DIR -version v1.2.0 -date 2026-01-31
//
// DIR/man/man1/NAME.1, DIR/completions/bash/NAME, DIR/completions/zsh/_NAME,
// DIR/completions/fish/NAME.fish and DIR/completions/powershell/NAME.ps1.
// scripts/release.sh puts them in every archive and package; `make install` installs the
// man pages. -man-only writes the man pages straight into DIR.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/entraclaw/entraclaw-cli/pkg/cli"
)

func main() {
	out := flag.String("out", "", "`directory` to write into (created)")
	version := flag.String("version", "(devel)", "version for the man pages' header")
	date := flag.String("date", "", "date (YYYY-MM-DD) for the man pages' header; a release passes the commit's")
	manOnly := flag.Bool("man-only", false, "write only the man pages, straight into -out")
	flag.Parse()
	if *out == "" || *date == "" || flag.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "usage: gendocs -out DIR -date YYYY-MM-DD [-version V] [-man-only]")
		os.Exit(2)
	}
	if err := generate(*out, *version, *date, *manOnly); err != nil {
		fmt.Fprintln(os.Stderr, "gendocs:", err)
		os.Exit(1)
	}
}

// completionFile is where each shell's script goes under DIR/completions, by the name
// each shell looks for.
var completionFile = map[string]string{
	"bash":       "bash/%s",
	"zsh":        "zsh/_%s",
	"fish":       "fish/%s.fish",
	"powershell": "powershell/%s.ps1",
}

func generate(out, version, date string, manOnly bool) error {
	for _, tool := range cli.Tools {
		var page bytes.Buffer
		if err := cli.WriteManPage(&page, tool, version, date); err != nil {
			return err
		}
		manDir := filepath.Join(out, "man", "man1")
		if manOnly {
			manDir = out
		}
		if err := write(filepath.Join(manDir, tool.Name+".1"), page.Bytes()); err != nil {
			return err
		}
		if manOnly {
			continue
		}
		for _, shell := range cli.CompletionShells() {
			var script bytes.Buffer
			if err := cli.WriteCompletion(&script, tool, shell); err != nil {
				return err
			}
			name := fmt.Sprintf(completionFile[shell], tool.Name)
			if err := write(filepath.Join(out, "completions", name), script.Bytes()); err != nil {
				return err
			}
		}
	}
	return nil
}

func write(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, data, 0o644)
}
