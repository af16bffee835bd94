package fakecmd

import (
	"os"
	"path/filepath"
	"runtime"
)

// toolsPathEnv is the env file's "PATH=DIR" entry for the directory this binary runs from, when
// the four tools sit next to it (make build: ./bin; make install / install-fake: GOBIN): `. DIR/env`
// then finds them without another PATH change. None when they are elsewhere (e.g. go run).
func toolsPathEnv() []string {
	exe, err := os.Executable()
	if err != nil {
		return nil
	}
	if resolved, err := filepath.EvalSymlinks(exe); err == nil {
		exe = resolved
	}
	dir := filepath.Dir(exe)
	suffix := ""
	if runtime.GOOS == "windows" {
		suffix = ".exe"
	}
	for _, tool := range []string{"entraclaw-provisioner-token", "entraclaw-migrate", "entraclaw-verify", "entraclaw-rollback"} {
		if fi, err := os.Stat(filepath.Join(dir, tool+suffix)); err != nil || fi.IsDir() {
			return nil
		}
	}
	return []string{"PATH=" + dir}
}
