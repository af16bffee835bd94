package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"strings"
	"testing"

	"github.com/entraclaw/entraclaw-cli/pkg/cli"
)

// -h groups the knobs (issue 22): every flag is in one of the named groups, none is left
// to "Other", and each group lists its flags.
func TestHelpGroupsTheKnobs(t *testing.T) {
	var out bytes.Buffer
	err := run(context.Background(), []string{"-h"}, cli.Stdio{Out: &out, Err: &out})
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("-h: %v", err)
	}
	help := out.String()
	if strings.Contains(help, "\nOther:\n") {
		t.Errorf("a flag is in no group:\n%s", help[strings.Index(help, "\nOther:\n"):])
	}
	last := -1
	for _, g := range flagGroups {
		at := strings.Index(help, "\n"+g.title+":\n")
		if at < 0 || at < last {
			t.Errorf("group %q missing or out of order", g.title)
			continue
		}
		last = at
		for _, name := range g.flags {
			if !strings.Contains(help[at:], "-"+name) {
				t.Errorf("-%s not listed under %q", name, g.title)
			}
		}
	}
	for _, want := range []string{"-token-throttle", "-key-removal-delay", "-cae-token-lifetime", "(default 24h0m0s)"} {
		if !strings.Contains(help, want) {
			t.Errorf("-h does not show %s", want)
		}
	}
}
