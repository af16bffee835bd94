package cli_test

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/txtar"
)

// readmeWalkScript runs the README's runbook blocks step by step against the fake.
const readmeWalkScript = "testdata/script/runbook/readme_walk.txtar"

// walkMarker precedes each README block that readmeWalkScript runs verbatim.
const walkMarker = "<!-- walk -->"

// walkBlocks returns the ```bash blocks that follow a walkMarker line in markdown, in order.
func walkBlocks(markdown string) ([]string, error) {
	var blocks []string
	lines := strings.SplitAfter(markdown, "\n")
	for i := 0; i < len(lines); i++ {
		if strings.TrimSpace(lines[i]) != walkMarker {
			continue
		}
		if i+1 >= len(lines) || strings.TrimSpace(lines[i+1]) != "```bash" {
			return nil, fmt.Errorf("line %d: %s is not followed by a ```bash line", i+1, walkMarker)
		}
		var b strings.Builder
		j := i + 2
		for ; j < len(lines) && strings.TrimSpace(lines[j]) != "```"; j++ {
			b.WriteString(lines[j])
		}
		if j == len(lines) {
			return nil, fmt.Errorf("line %d: the ```bash block after %s is not closed", i+2, walkMarker)
		}
		blocks = append(blocks, b.String())
		i = j
	}
	return blocks, nil
}

// walkRun matches a script line that runs one walk file: exec, ! exec or exits N.
var walkRun = regexp.MustCompile(`(?m)^(?:!\s*)?(?:exec|exits\s+\d+)\s+bash\s+\$WORK/(walk/\S+\.sh)\s*$`)

// scriptWalk returns the walk files of a txtar script in the order its lines run them, and
// every walk file the archive holds.
func scriptWalk(data []byte) (run []string, files map[string]string) {
	ar := txtar.Parse(data)
	files = map[string]string{}
	for _, f := range ar.Files {
		if strings.HasPrefix(f.Name, "walk/") {
			files[f.Name] = string(f.Data)
		}
	}
	for _, m := range walkRun.FindAllStringSubmatch(string(ar.Comment), -1) {
		run = append(run, m[1])
	}
	return run, files
}

// TestReadmeWalkMatchesScript: readme_walk.txtar runs exactly the README's walk blocks, byte
// for byte and in the README's order, so a newcomer following the README runs what the test
// runs (issue 17 §6). Change a block in one place and this test names the other.
func TestReadmeWalkMatchesScript(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join(moduleRoot(), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	script, err := os.ReadFile(readmeWalkScript)
	if err != nil {
		t.Fatal(err)
	}
	if err := compareWalk(string(readme), script); err != nil {
		t.Error(err)
	}
}

// compareWalk returns what differs between the README's walk blocks and the script's.
func compareWalk(readme string, script []byte) error {
	blocks, err := walkBlocks(readme)
	if err != nil {
		return fmt.Errorf("README.md: %v", err)
	}
	if len(blocks) < 5 {
		return fmt.Errorf("README.md has %d %s blocks; the runbook walk needs its steps marked", len(blocks), walkMarker)
	}
	run, files := scriptWalk(script)
	var problems []string
	for i, block := range blocks {
		if i >= len(run) {
			problems = append(problems, fmt.Sprintf("README walk block %d is not run by %s:\n%s", i+1, readmeWalkScript, block))
			continue
		}
		got, ok := files[run[i]]
		switch {
		case !ok:
			problems = append(problems, fmt.Sprintf("%s runs %s, which it does not hold", readmeWalkScript, run[i]))
		case got != block:
			problems = append(problems, fmt.Sprintf("README walk block %d differs from %s in %s:\nREADME:\n%sscript:\n%s", i+1, run[i], readmeWalkScript, block, got))
		}
	}
	if len(run) > len(blocks) {
		problems = append(problems, fmt.Sprintf("%s runs %d walk files; the README has %d walk blocks", readmeWalkScript, len(run), len(blocks)))
	}
	used := map[string]bool{}
	for _, name := range run {
		used[name] = true
	}
	for name := range files {
		if !used[name] {
			problems = append(problems, fmt.Sprintf("%s holds %s but never runs it", readmeWalkScript, name))
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("%s", strings.Join(problems, "\n"))
	}
	return nil
}

// TestCompareWalkCatchesDrift: the comparison fails on an edited, added, missing or
// reordered block, so TestReadmeWalkMatchesScript can fail.
func TestCompareWalkCatchesDrift(t *testing.T) {
	readme := func(blocks ...string) string {
		var b strings.Builder
		for _, blk := range blocks {
			fmt.Fprintf(&b, "text\n\n%s\n```bash\n%s```\n\n", walkMarker, blk)
		}
		b.WriteString("```bash\nnot a walk block\n```\n")
		return b.String()
	}
	script := func(blocks ...string) []byte {
		var b strings.Builder
		for i := range blocks {
			fmt.Fprintf(&b, "exec bash $WORK/walk/%02d.sh\nstdout x\n", i+1)
		}
		for i, blk := range blocks {
			fmt.Fprintf(&b, "-- walk/%02d.sh --\n%s", i+1, blk)
		}
		return []byte(b.String())
	}
	steps := []string{"a\n", "b && c\n", "TOKEN=$(d)\ne \"$TOKEN\"\n", "f\n", "g\n"}
	if err := compareWalk(readme(steps...), script(steps...)); err != nil {
		t.Fatalf("equal walks reported as different: %v", err)
	}
	edited := append([]string{}, steps...)
	edited[2] = "TOKEN=$(d)\ne $TOKEN\n"
	swapped := append([]string{}, steps...)
	swapped[0], swapped[1] = swapped[1], swapped[0]
	for name, tc := range map[string]struct {
		readme string
		script []byte
	}{
		"edited":  {readme(edited...), script(steps...)},
		"added":   {readme(append(steps, "h\n")...), script(steps...)},
		"missing": {readme(steps...), script(append(steps, "h\n")...)},
		"swapped": {readme(swapped...), script(steps...)},
		"too few": {readme(steps[:3]...), script(steps[:3]...)},
	} {
		if err := compareWalk(tc.readme, tc.script); err == nil {
			t.Errorf("%s: drift not reported", name)
		}
	}
}
