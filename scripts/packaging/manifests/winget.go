package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// yamlLine is one "key: value" line of a winget manifest: its indent, whether it starts a
// list item ("- "), its key and its value. winget manifests are block YAML of this one shape.
type yamlLine struct {
	indent   int
	item     bool
	key, val string
}

func yamlLines(data []byte) []yamlLine {
	var lines []yamlLine
	for _, raw := range strings.Split(string(data), "\n") {
		trimmed := strings.TrimLeft(raw, " ")
		if trimmed == "" || strings.HasPrefix(trimmed, "#") {
			continue
		}
		l := yamlLine{indent: len(raw) - len(trimmed)}
		if rest, ok := strings.CutPrefix(trimmed, "- "); ok {
			l.item, trimmed = true, rest
		}
		key, val, ok := strings.Cut(trimmed, ": ")
		if !ok {
			key, ok = strings.CutSuffix(trimmed, ":")
			if !ok {
				key, val = "", trimmed // a plain list item
			}
		}
		l.key, l.val = key, strings.Trim(val, `"'`)
		lines = append(lines, l)
	}
	return lines
}

// parseWingetInstaller reads the installer manifest: each Installers item's Architecture,
// InstallerUrl and InstallerSha256, and the portable aliases of its nested files, which
// must be the same for every architecture.
func parseWingetInstaller(data []byte) (manifest, error) {
	m := manifest{downloads: map[string]download{}}
	archOf := map[string]string{"x64": "amd64", "arm64": "arm64"}
	var arch string
	var aliases []string
	flush := func() error {
		if arch == "" {
			return nil
		}
		if m.tools != nil && !slices.Equal(aliases, m.tools) {
			return fmt.Errorf("%s installs %v, another architecture %v", arch, aliases, m.tools)
		}
		m.tools, aliases = aliases, nil
		return nil
	}
	for _, l := range yamlLines(data) {
		switch {
		case l.indent == 0 && l.key == "PackageVersion":
			m.version = l.val
		case l.key == "Architecture" && l.item:
			if err := flush(); err != nil {
				return m, err
			}
			arch = "windows/" + archOf[l.val]
		case l.key == "InstallerUrl" && arch != "":
			d := m.downloads[arch]
			d.url = l.val
			m.downloads[arch] = d
		case l.key == "InstallerSha256" && arch != "":
			d := m.downloads[arch]
			d.sha256 = l.val
			m.downloads[arch] = d
		case l.key == "PortableCommandAlias" && arch != "":
			aliases = append(aliases, l.val)
		}
	}
	return m, flush()
}

// checkWingetVersions: the three winget files name one package and one version.
func checkWingetVersions(rel *release, out string) error {
	for _, tmpl := range []string{"winget/version.yaml.tmpl", "winget/installer.yaml.tmpl", "winget/locale.en-US.yaml.tmpl"} {
		data, err := os.ReadFile(filepath.Join(out, outputs[tmpl]))
		if err != nil {
			return err
		}
		got := map[string]string{}
		for _, l := range yamlLines(data) {
			if l.indent == 0 && !l.item {
				got[l.key] = l.val
			}
		}
		if got["PackageIdentifier"] != rel.WingetID || got["PackageVersion"] != rel.Version || got["ManifestVersion"] == "" {
			return fmt.Errorf("%s: PackageIdentifier %q, PackageVersion %q, ManifestVersion %q; want %s %s",
				outputs[tmpl], got["PackageIdentifier"], got["PackageVersion"], got["ManifestVersion"], rel.WingetID, rel.Version)
		}
	}
	return nil
}
