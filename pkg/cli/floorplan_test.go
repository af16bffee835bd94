package cli_test

import (
	"go/build"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// floorPlan is what each package of the module may import of the module (production
// code, not tests): packages import downward only (docs/internals.md).
var floorPlan = map[string][]string{
	"pkg/exit":     {},
	"pkg/state":    {},
	"pkg/certs":    {},
	"pkg/keystore": {},
	"pkg/tpmkey":   {"pkg/certs"},
	// This machine's certificate items: read, parsed, one wording for missing, corrupt, expired.
	"pkg/machinecert": {"pkg/certs", "pkg/keystore"},
	"pkg/entra":       {"pkg/certs", "pkg/tpmkey"},
	"pkg/entratest":   {"pkg/certs"},
	"pkg/provision":   {"pkg/certs", "pkg/entra", "pkg/keystore", "pkg/machinecert", "pkg/state", "pkg/token", "pkg/tpmkey"},
	"pkg/verify":      {"pkg/certs", "pkg/entra", "pkg/keystore", "pkg/machinecert", "pkg/state", "pkg/tpmkey"},
	"pkg/token":       {"pkg/certs", "pkg/entra", "pkg/keystore", "pkg/machinecert", "pkg/state"},
	"pkg/schedule":    {},
	"pkg/cli":         {"pkg/certs", "pkg/entra", "pkg/keystore", "pkg/machinecert", "pkg/provision", "pkg/schedule", "pkg/state", "pkg/token", "pkg/tpmkey", "pkg/verify"},
	// The fake's command wires the fake to the keyring and the command line (blueprint §2);
	// no tool imports it, so no tool links the fake.
	"pkg/fakecmd":              {"pkg/cli", "pkg/entratest", "pkg/keystore"},
	"cmd/entraclaw-fake-entra": {"pkg/cli", "pkg/fakecmd"},
}

// TestFloorPlan fails when a package imports upward or sideways, or when a package
// appears that the floor plan does not know.
func TestFloorPlan(t *testing.T) {
	const module = "github.com/entraclaw/entraclaw-cli/"
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	var dirs []string
	for _, top := range []string{"pkg", "cmd"} {
		entries, err := os.ReadDir(filepath.Join(root, top))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			if e.IsDir() {
				dirs = append(dirs, top+"/"+e.Name())
			}
		}
	}
	for _, dir := range dirs {
		allowed, known := floorPlan[dir]
		if !known && strings.HasPrefix(dir, "cmd/") {
			allowed, known = []string{"pkg/cli"}, true // cmd/*/main.go: one call into pkg/cli
		}
		if !known {
			t.Errorf("%s is not in the floor plan: place it (and keep to the budget of packages)", dir)
			continue
		}
		for _, goos := range []string{"linux", "darwin", "windows"} {
			ctx := build.Default
			ctx.GOOS = goos
			pkg, err := ctx.ImportDir(filepath.Join(root, dir), 0)
			if err != nil {
				t.Fatalf("%s (%s): %v", dir, goos, err)
			}
			for _, imp := range pkg.Imports {
				ours, ok := strings.CutPrefix(imp, module)
				if ok && ours != "pkg/exit" && !slices.Contains(allowed, ours) { // pkg/exit: a leaf every package may use
					t.Errorf("%s imports %s (GOOS=%s): not allowed by the floor plan %v", dir, ours, goos, allowed)
				}
			}
		}
	}
}
