package cli

import (
	"errors"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"strings"
)

// Stamped at build time by the Makefile and the release build:
//
//	go build -ldflags "-X github.com/entraclaw/entraclaw-cli/pkg/cli.version=v1.2.0
//	  -X github.com/entraclaw/entraclaw-cli/pkg/cli.commit=<sha> -X github.com/entraclaw/entraclaw-cli/pkg/cli.date=<RFC 3339>"
//
// Left empty, BuildInfo falls back to the module's build info: the module version for
// `go install …@v1.2.0`, and vcs.revision / vcs.time / vcs.modified for a build inside a
// git checkout.
var version, commit, date string

// BuildInfo is what -version prints.
type BuildInfo struct {
	Name      string `json:"name"`
	Version   string `json:"version"`
	Commit    string `json:"commit,omitempty"`
	Modified  bool   `json:"modified,omitempty"`
	Date      string `json:"date,omitempty"`
	GoVersion string `json:"goVersion"`
	Platform  string `json:"platform"`
}

// GetBuildInfo describes the running binary: ldflags stamps first, then the module's
// build info, then "(devel)".
func GetBuildInfo(name string) BuildInfo {
	bi := BuildInfo{Name: name, Version: version, Commit: commit, Date: date,
		GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if info, ok := debug.ReadBuildInfo(); ok {
		if bi.Version == "" && info.Main.Version != "" {
			bi.Version = info.Main.Version
		}
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				if bi.Commit == "" {
					bi.Commit = s.Value
				}
			case "vcs.time":
				if bi.Date == "" {
					bi.Date = s.Value
				}
			case "vcs.modified":
				if commit == "" {
					bi.Modified = s.Value == "true"
				}
			}
		}
	}
	if bi.Version == "" {
		bi.Version = "(devel)"
	}
	return bi
}

// Version is the binary's version: the stamped one, the module version from build info,
// or "(devel)".
func Version() string { return GetBuildInfo("").Version }

var errVersionPrinted = errors.New("version printed")

// PrintVersion writes -version's output and returns errVersionPrinted (exit 0):
//
//	entraclaw-verify v1.2.0
//	  commit:   0123abcd… (modified)
//	  built:    2026-11-30T20:00:00Z
//	  go:       go1.25.4
//	  platform: linux/amd64
func PrintVersion(w io.Writer, name string, asJSON bool) error {
	bi := GetBuildInfo(name)
	if asJSON {
		if err := WriteJSON(w, bi); err != nil {
			return err
		}
		return errVersionPrinted
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s\n", name, bi.Version)
	if bi.Commit != "" {
		mod := ""
		if bi.Modified {
			mod = " (modified)"
		}
		fmt.Fprintf(&b, "  commit:   %s%s\n", bi.Commit, mod)
	}
	if bi.Date != "" {
		fmt.Fprintf(&b, "  built:    %s\n", bi.Date)
	}
	fmt.Fprintf(&b, "  go:       %s\n  platform: %s\n", bi.GoVersion, bi.Platform)
	if _, err := io.WriteString(w, b.String()); err != nil {
		return err
	}
	return errVersionPrinted
}
