package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The proxy serves each published module to the go command itself: the
// nested module's directory left out of the root's zip.
func TestProxyServesEachPublishedModuleToTheGoCommand(t *testing.T) {
	files := map[string]string{"sub/go.mod": "module example.com/r/sub\n\ngo 1.26.0\n\nrequire example.com/r v0.2.0\n"}
	for k, v := range tree {
		if k != "sub/go.mod" {
			files[k] = v
		}
	}
	r, err := loadRepo(writeTree(t, files))
	if err != nil {
		t.Fatal(err)
	}
	proxy := t.TempDir()
	if err := r.writeProxy(proxy); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, filepath.Join(proxy, "example.com/r/sub/@v/list")); got != "v0.2.0\n" {
		t.Errorf("list %q, want v0.2.0", got)
	}
	if _, err := os.Stat(filepath.Join(proxy, "example.com/r/tools")); !os.IsNotExist(err) {
		t.Errorf("the unpublished module is in the proxy: %v", err)
	}

	cmd := exec.Command("go", "mod", "download", "-json", "example.com/r/sub@v0.2.0", "example.com/r@v0.2.0")
	cmd.Dir = t.TempDir()
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOPROXY=file://"+filepath.ToSlash(proxy), "GOSUMDB=off",
		"GOMODCACHE="+t.TempDir(), "GOFLAGS=-modcacherw")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go mod download: %v\n%s", err, out)
	}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	dirs := map[string]string{}
	for dec.More() {
		var m struct{ Path, Version, Dir, Error string }
		if err := dec.Decode(&m); err != nil {
			t.Fatal(err)
		}
		if m.Error != "" || m.Version != "v0.2.0" {
			t.Errorf("%s: version %q, error %q", m.Path, m.Version, m.Error)
		}
		dirs[m.Path] = m.Dir
	}
	for _, f := range []string{"example.com/r/r.go", "example.com/r/sub/sub.go"} {
		mod, file := filepath.Dir(f), filepath.Base(f)
		if _, err := os.Stat(filepath.Join(dirs[mod], file)); err != nil {
			t.Errorf("%s@v0.2.0 lacks %s: %v", mod, file, err)
		}
	}
	for _, left := range []string{"sub", "tools", "versions.txt"} {
		_, err := os.Stat(filepath.Join(dirs["example.com/r"], left))
		if wantThere := left == "versions.txt"; (err == nil) != wantThere {
			t.Errorf("root zip has %s: %v, want %v", left, err == nil, wantThere)
		}
	}
}
