package main

import (
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeSums writes a SHA256SUMS like scripts/release.sh's for tag, with a distinct hash
// per file, and returns its path.
func fakeSums(t *testing.T, tag string, platforms []string) string {
	t.Helper()
	var b strings.Builder
	for _, p := range platforms {
		name := "entraclaw_" + tag + "_" + strings.Replace(p, "/", "_", 1)
		if strings.HasPrefix(p, "windows/") {
			name += ".zip"
		} else {
			name += ".tar.gz"
		}
		fmt.Fprintf(&b, "%x  %s\n", sha256.Sum256([]byte(name)), name)
	}
	fmt.Fprintf(&b, "%x  entraclaw_%s_linux_amd64.deb\n", sha256.Sum256([]byte("deb")), tag)
	path := filepath.Join(t.TempDir(), "SHA256SUMS")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

var allPlatforms = []string{"linux/amd64", "linux/arm64", "darwin/amd64", "darwin/arm64", "windows/amd64", "windows/arm64"}

// generated writes the manifests of a fake release and returns it and the directory.
func generated(t *testing.T) (*release, string) {
	t.Helper()
	rel, err := readRelease(fakeSums(t, "v1.2.0", allPlatforms), "v1.2.0", "2026-01-31")
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	if err := write(rel, "../../../packaging", out); err != nil {
		t.Fatal(err)
	}
	return rel, out
}

// TestManifestsMatchSHA256SUMS: the formula, the Scoop and the winget manifests parse, and
// each names every archive of its platforms with the URL and hash SHA256SUMS lists.
func TestManifestsMatchSHA256SUMS(t *testing.T) {
	rel, out := generated(t)
	if err := check(rel, out); err != nil {
		t.Fatal(err)
	}
	formula, _ := os.ReadFile(filepath.Join(out, "homebrew/entraclaw.rb"))
	for _, want := range []string{"class Entraclaw < Formula", `version "1.2.0"`,
		`url "https://github.com/entraclaw/entraclaw-cli/releases/download/v1.2.0/entraclaw_v1.2.0_darwin_arm64.tar.gz"`,
		`man1.install`, `bash_completion.install`} {
		if !strings.Contains(string(formula), want) {
			t.Errorf("the formula lacks %q:\n%s", want, formula)
		}
	}
	installer, _ := os.ReadFile(filepath.Join(out, "winget/"+wingetID+".installer.yaml"))
	if !strings.Contains(string(installer), `RelativeFilePath: entraclaw_v1.2.0_windows_arm64\entraclaw-verify.exe`) {
		t.Errorf("the winget installer does not name the nested exe:\n%s", installer)
	}
}

// TestManifestCheckCatchesMismatch: a manifest whose hash, URL or version differs from
// SHA256SUMS, or that leaves out a platform or a tool, fails the check.
func TestManifestCheckCatchesMismatch(t *testing.T) {
	rel, _ := generated(t)
	swap := func(a, b string) func(string) string {
		return func(s string) string { return strings.Replace(s, a, b, 1) }
	}
	amd64, arm64 := rel.archives["windows/amd64"], rel.archives["windows/arm64"]
	darwin := rel.archives["darwin/arm64"]
	for _, c := range []struct {
		file string
		edit func(string) string
	}{
		{"homebrew/entraclaw.rb", swap(darwin.SHA256, rel.archives["darwin/amd64"].SHA256)},
		{"homebrew/entraclaw.rb", swap(darwin.URL, strings.Replace(darwin.URL, "v1.2.0/", "v1.1.0/", 1))},
		{"homebrew/entraclaw.rb", swap(`version "1.2.0"`, `version "1.2.1"`)},
		{"homebrew/entraclaw.rb", swap(`, "entraclaw-rollback"`, "")},
		{"scoop/entraclaw.json", swap(amd64.SHA256, arm64.SHA256)},
		{"scoop/entraclaw.json", swap(`"arm64": {`, `"32bit": {`)},
		{"scoop/entraclaw.json", swap(`"extract_dir": "entraclaw_v1.2.0_windows_amd64"`, `"extract_dir": "entraclaw"`)},
		{"winget/" + wingetID + ".installer.yaml", swap(strings.ToUpper(arm64.SHA256), strings.ToUpper(amd64.SHA256))},
		{"winget/" + wingetID + ".installer.yaml", swap("PortableCommandAlias: entraclaw-migrate", "PortableCommandAlias: migrate")},
		{"winget/" + wingetID + ".locale.en-US.yaml", swap("PackageVersion: 1.2.0", "PackageVersion: 1.2.1")},
	} {
		_, out := generated(t)
		path := filepath.Join(out, c.file)
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		edited := c.edit(string(data))
		if edited == string(data) {
			t.Fatalf("%s: the edit changed nothing", c.file)
		}
		if err := os.WriteFile(path, []byte(edited), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := check(rel, out); err == nil {
			t.Errorf("%s edited: the check passed", c.file)
		}
	}
}

// TestManifestsNeedEveryArchive: a SHA256SUMS without the windows/arm64 archive makes no
// manifests (rather than one with an empty URL).
func TestManifestsNeedEveryArchive(t *testing.T) {
	rel, err := readRelease(fakeSums(t, "v1.2.0", allPlatforms[:5]), "v1.2.0", "")
	if err != nil {
		t.Fatal(err)
	}
	if err := write(rel, "../../../packaging", t.TempDir()); err == nil || !strings.Contains(err.Error(), "windows/arm64") {
		t.Errorf("write = %v, want an error naming windows/arm64", err)
	}
}
