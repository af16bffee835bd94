// Command manifests writes the Homebrew formula, the Scoop manifest and the winget manifests
// of a release from its SHA256SUMS and the templates under packaging/, then checks them
// (what -check does alone): each file is parsed back and its URLs and hashes must be the
// ones SHA256SUMS lists for the same archives.
//
//	go run ./scripts/packaging/manifests -sums dist/SHA256SUMS -version v1.2.0 -templates packaging -out dist
//	go run ./scripts/packaging/manifests -check -sums dist/SHA256SUMS -version v1.2.0 -out dist
//
// It writes OUT/homebrew/entraclaw.rb, OUT/scoop/entraclaw.json and
// OUT/winget/<identifier>.{yaml,installer.yaml,locale.en-US.yaml} (winget-pkgs' layout).
package main

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/template"
)

// tools are the binaries each archive holds (the four of cli.Tools).
var tools = []string{"entraclaw-provisioner-token", "entraclaw-migrate", "entraclaw-verify", "entraclaw-rollback"}

// wingetID is the package's winget identifier.
const wingetID = "Entraclaw.EntraclawCLI"

// downloadBase is where a release's assets are: <base>/<tag>/<file>.
const downloadBase = "https://github.com/entraclaw/entraclaw-cli/releases/download"

func main() {
	sums := flag.String("sums", "dist/SHA256SUMS", "the release's `SHA256SUMS`")
	version := flag.String("version", "", "the release's `tag` (v1.2.0, or a snapshot's version)")
	date := flag.String("date", "", "release `date` YYYY-MM-DD for winget's ReleaseDate (default: none)")
	templates := flag.String("templates", "packaging", "`directory` of the templates")
	out := flag.String("out", "dist", "`directory` to write into (and -check to read)")
	checkOnly := flag.Bool("check", false, "only check the manifests already in -out")
	flag.Parse()
	if *version == "" || flag.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "usage: manifests -version TAG [-sums FILE] [-templates DIR] [-out DIR] [-check]")
		os.Exit(2)
	}
	rel, err := readRelease(*sums, *version, *date)
	if err == nil && !*checkOnly {
		err = write(rel, *templates, *out)
	}
	if err == nil {
		err = check(rel, *out)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "manifests:", err)
		os.Exit(1)
	}
}

// release is what the templates are filled with.
type release struct {
	Tag, Version, Date, WingetID string
	Tools                        []string
	archives                     map[string]archive // by "os/arch"
}

// archive is one release archive as SHA256SUMS lists it.
type archive struct {
	Name, URL, SHA256 string
	Dir               string // its top directory (the name without .tar.gz / .zip)
}

// readRelease reads SHA256SUMS (sha256sum's "HASH  NAME" lines) into a release.
func readRelease(sumsPath, tag, date string) (*release, error) {
	data, err := os.ReadFile(sumsPath)
	if err != nil {
		return nil, err
	}
	rel := &release{Tag: tag, Version: strings.TrimPrefix(tag, "v"), Date: date, WingetID: wingetID,
		Tools: tools, archives: map[string]archive{}}
	prefix := "entraclaw_" + tag + "_"
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		hash, name, ok := strings.Cut(sc.Text(), "  ")
		if !ok || len(hash) != 64 || !isHex(hash) {
			return nil, fmt.Errorf("%s: not a sha256sum line: %q", sumsPath, sc.Text())
		}
		name = strings.TrimPrefix(name, "*")
		dir, isArchive := strings.CutSuffix(name, ".tar.gz")
		if !isArchive {
			dir, isArchive = strings.CutSuffix(name, ".zip")
		}
		platform, ok := strings.CutPrefix(dir, prefix)
		if !isArchive || !ok {
			continue // a package (.deb, .rpm) or another version's file
		}
		goos, arch, _ := strings.Cut(platform, "_")
		rel.archives[goos+"/"+arch] = archive{Name: name, URL: downloadBase + "/" + tag + "/" + name, SHA256: hash, Dir: dir}
	}
	return rel, sc.Err()
}

func isHex(s string) bool { _, err := hex.DecodeString(s); return err == nil }

// archiveFor is the template function `archive OS ARCH`: a missing platform is an error,
// not an empty URL in a manifest.
func (r *release) archiveFor(goos, arch string) (archive, error) {
	a, ok := r.archives[goos+"/"+arch]
	if !ok {
		return a, fmt.Errorf("SHA256SUMS lists no %s/%s archive of %s", goos, arch, r.Tag)
	}
	return a, nil
}

// outputs maps each template (under -templates) to the file it makes (under -out).
var outputs = map[string]string{
	"homebrew/entraclaw.rb.tmpl":    "homebrew/entraclaw.rb",
	"scoop/entraclaw.json.tmpl":     "scoop/entraclaw.json",
	"winget/version.yaml.tmpl":      "winget/" + wingetID + ".yaml",
	"winget/installer.yaml.tmpl":    "winget/" + wingetID + ".installer.yaml",
	"winget/locale.en-US.yaml.tmpl": "winget/" + wingetID + ".locale.en-US.yaml",
}

func write(rel *release, templates, out string) error {
	funcs := template.FuncMap{
		"archive": rel.archiveFor,
		"quote":   func(s string) string { b, _ := json.Marshal(s); return string(b) }, // a Ruby "…" string
		"json":    func(s string) string { b, _ := json.Marshal(s); return string(b) },
		"upper":   strings.ToUpper,
		"list":    func(s ...string) []string { return s },
	}
	for src, dst := range outputs {
		tmpl, err := template.New(filepath.Base(src)).Funcs(funcs).Option("missingkey=error").ParseFiles(filepath.Join(templates, src))
		if err != nil {
			return err
		}
		var b bytes.Buffer
		if err := tmpl.Execute(&b, rel); err != nil {
			return err
		}
		path := filepath.Join(out, dst)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
			return err
		}
	}
	return nil
}
