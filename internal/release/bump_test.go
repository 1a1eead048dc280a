package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestBumpSetsEveryRequireAndTheWorkspace(t *testing.T) {
	dir := writeTree(t, tree)
	r, err := loadRepo(dir)
	if err != nil {
		t.Fatal(err)
	}
	changed, err := r.bump(true)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"sub/go.mod", "tools/go.mod", "go.work"}; !slices.Equal(changed, want) {
		t.Errorf("changed %q, want %q", changed, want)
	}
	for name, want := range map[string]string{
		"sub/go.mod":   "require example.com/r v0.2.0\n",
		"tools/go.mod": "require example.com/r/sub v0.2.0\n",
		"go.work": "go 1.26.0\n\nuse (\n\t.\n\t./sub\n\t./tools\n)\n\n" +
			"// The coming version of each published module is this tree, also where\n" +
			"// the module proxy does not have it yet.\n" +
			"replace (\n\texample.com/r v0.2.0 => .\n\texample.com/r/sub v0.2.0 => ./sub\n)\n",
	} {
		if got := readFile(t, filepath.Join(dir, name)); !strings.HasSuffix(got, want) {
			t.Errorf("%s:\n%s\nwant it to end with:\n%s", name, got, want)
		}
	}
	if changed, err := r.bump(true); err != nil || len(changed) > 0 {
		t.Errorf("second bump changed %q, %v; want nothing", changed, err)
	}
}

func TestCheckNamesWhatIsNotReleasable(t *testing.T) {
	dir := writeTree(t, tree)
	r, err := loadRepo(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "sub/go.sum"),
		[]byte("example.com/r v0.2.0 h1:abc=\nexample.com/dep v1.0.0 h1:def=\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	err = r.check()
	for _, want := range []string{
		"sub/go.mod:5: replace example.com/r",
		"sub/go.sum:1: a hash of example.com/r",
		"sub/go.mod: not as versions.txt",
		"tools/go.mod: not as versions.txt",
		"go.work: not as versions.txt",
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("check: %v\nwant it to say %q", err, want)
		}
	}
	if err != nil && strings.Contains(err.Error(), "example.com/dep") {
		t.Errorf("check: %v\nwant nothing said of another module's hash", err)
	}

	if _, err := r.bump(true); err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		"sub/go.mod": "module example.com/r/sub\n\ngo 1.26.0\n\nrequire example.com/r v0.2.0\n",
		"sub/go.sum": "example.com/dep v1.0.0 h1:def=\n",
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.check(); err != nil {
		t.Errorf("check after bump, without the replace and the hash: %v", err)
	}
}
