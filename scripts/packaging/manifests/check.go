package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
)

// check parses each manifest in out back and compares what it would download with
// SHA256SUMS: every platform it names has that archive's URL and hash, and it installs
// the four tools.
func check(rel *release, out string) error {
	for _, c := range []struct {
		file  string
		parse func([]byte) (manifest, error)
	}{
		{outputs["homebrew/entraclaw.rb.tmpl"], parseFormula},
		{outputs["scoop/entraclaw.json.tmpl"], parseScoop},
		{outputs["winget/installer.yaml.tmpl"], parseWingetInstaller},
	} {
		data, err := os.ReadFile(filepath.Join(out, c.file))
		if err != nil {
			return err
		}
		m, err := c.parse(data)
		if err != nil {
			return fmt.Errorf("%s: %v", c.file, err)
		}
		if err := m.matches(rel); err != nil {
			return fmt.Errorf("%s: %v", c.file, err)
		}
	}
	return checkWingetVersions(rel, out)
}

// manifest is what a parsed manifest downloads and installs.
type manifest struct {
	version   string
	downloads map[string]download // by "os/arch"
	tools     []string            // binary names without .exe
}

type download struct{ url, sha256 string }

// wantPlatforms is which archives each channel installs.
var wantPlatforms = map[bool][]string{
	false: {"darwin/amd64", "darwin/arm64", "linux/amd64", "linux/arm64"}, // Homebrew
	true:  {"windows/amd64", "windows/arm64"},                             // Scoop, winget
}

func (m manifest) matches(rel *release) error {
	if m.version != rel.Version {
		return fmt.Errorf("version %q, want %q", m.version, rel.Version)
	}
	_, windows := m.downloads["windows/amd64"]
	want := wantPlatforms[windows]
	if got := sortedKeys(m.downloads); !slices.Equal(got, want) {
		return fmt.Errorf("platforms %v, want %v", got, want)
	}
	for platform, d := range m.downloads {
		a := rel.archives[platform]
		if d.url != a.URL || !strings.EqualFold(d.sha256, a.SHA256) {
			return fmt.Errorf("%s: %s %s, SHA256SUMS: %s %s", platform, d.url, d.sha256, a.URL, a.SHA256)
		}
	}
	if !slices.Equal(m.tools, tools) {
		return fmt.Errorf("installs %v, want %v", m.tools, tools)
	}
	return nil
}

func sortedKeys(m map[string]download) []string {
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

var (
	rubyBlock  = regexp.MustCompile(`^\s*on_(macos|linux|arm|intel) do$`)
	rubyString = regexp.MustCompile(`^\s*(version|url|sha256) "([^"]*)"$`)
	rubyBin    = regexp.MustCompile(`^\s*bin\.install (.*)$`)
)

// parseFormula reads a formula's version, the url and sha256 inside each
// on_macos/on_linux × on_arm/on_intel block, and what bin.install installs.
func parseFormula(data []byte) (manifest, error) {
	m := manifest{downloads: map[string]download{}}
	osOf := map[string]string{"macos": "darwin", "linux": "linux"}
	archOf := map[string]string{"arm": "arm64", "intel": "amd64"}
	var goos, arch string
	for _, line := range strings.Split(string(data), "\n") {
		if b := rubyBlock.FindStringSubmatch(line); b != nil {
			if o, ok := osOf[b[1]]; ok {
				goos = o
			} else {
				arch = archOf[b[1]]
			}
			continue
		}
		if strings.TrimSpace(line) == "end" && arch != "" {
			arch = ""
		} else if strings.TrimSpace(line) == "end" {
			goos = ""
		}
		if s := rubyString.FindStringSubmatch(line); s != nil {
			key := goos + "/" + arch
			d := m.downloads[key]
			switch {
			case s[1] == "version" && goos == "":
				m.version = s[2]
			case s[1] == "url" && arch != "":
				d.url = s[2]
			case s[1] == "sha256" && arch != "":
				d.sha256 = s[2]
			default:
				return m, fmt.Errorf("%s outside an on_<os> on_<arch> block: %q", s[1], line)
			}
			if s[1] != "version" {
				m.downloads[key] = d
			}
		}
		if b := rubyBin.FindStringSubmatch(line); b != nil {
			for _, t := range strings.Split(b[1], ", ") {
				m.tools = append(m.tools, strings.Trim(t, `"`))
			}
		}
	}
	return m, nil
}

// parseScoop reads a Scoop manifest (JSON).
func parseScoop(data []byte) (manifest, error) {
	var s struct {
		Version      string
		Architecture map[string]struct {
			URL        string
			Hash       string
			ExtractDir string `json:"extract_dir"`
		}
		Bin []string
	}
	if err := json.Unmarshal(data, &s); err != nil {
		return manifest{}, err
	}
	m := manifest{version: s.Version, downloads: map[string]download{}}
	archOf := map[string]string{"64bit": "amd64", "arm64": "arm64"}
	for scoopArch, a := range s.Architecture {
		m.downloads["windows/"+archOf[scoopArch]] = download{a.URL, a.Hash}
		if !strings.HasSuffix(a.URL, "/"+a.ExtractDir+".zip") {
			return m, fmt.Errorf("%s: extract_dir %q is not the archive's directory", scoopArch, a.ExtractDir)
		}
	}
	for _, b := range s.Bin {
		m.tools = append(m.tools, strings.TrimSuffix(b, ".exe"))
	}
	return m, nil
}
