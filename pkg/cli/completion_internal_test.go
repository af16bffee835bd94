package cli

import (
	"strings"
	"testing"
)

// TestCompletionValuesAreDocumented: every value a flag completes to is one its -h usage
// names, and the flags the issue lists complete to values or file names at all.
func TestCompletionValuesAreDocumented(t *testing.T) {
	completes := map[string]bool{}
	for _, tool := range Tools {
		spec, err := describe(tool)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range spec.flags {
			for _, v := range f.values {
				if !strings.Contains(f.usage, v) {
					t.Errorf("%s -%s completes to %q, which its usage does not name: %q", tool.Name, f.names[0], v, f.usage)
				}
			}
			if len(f.values) > 0 || f.files {
				completes[f.names[0]] = true
			}
			if (len(f.values) > 0 || f.files) && !f.takesValue() {
				t.Errorf("%s -%s takes no value but completes one", tool.Name, f.names[0])
			}
		}
	}
	for _, name := range []string{"o", "cloud", "key-store", "token-cache", "credential", "schedule",
		"state-file", "ca-file", "config", "backup", "federated-token-file"} {
		if !completes[name] {
			t.Errorf("-%s completes to nothing", name)
		}
	}
}

// TestDescribeRunsNothing: describing a tool builds its flag table and stops there, so
// gendocs needs no state file, keyring or network.
func TestDescribeRunsNothing(t *testing.T) {
	t.Setenv("ENTRACLAW_STATE_FILE", "/nonexistent/.entraclaw-state.json")
	t.Setenv("ENTRACLAW_WAIT", "not a duration")
	for _, tool := range Tools {
		spec, err := describe(tool)
		if err != nil || spec.name != tool.Name || len(spec.flags) < 15 || spec.summary == "" {
			t.Errorf("describe(%s) = %s with %d flags, err %v", tool.Name, spec.name, len(spec.flags), err)
		}
	}
}
