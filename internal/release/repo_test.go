package main

import (
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadRepoFindsEveryModuleFromBelowTheRoot(t *testing.T) {
	dir := writeTree(t, tree)
	r, err := loadRepo(filepath.Join(dir, "sub"))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range r.modules {
		got = append(got, m.Dir+" "+m.Path+" "+m.Go+" "+m.Version+" "+m.tag())
	}
	want := []string{
		". example.com/r 1.25 v0.2.0 v0.2.0",
		"sub example.com/r/sub 1.26.0 v0.2.0 sub/v0.2.0",
		"tools example.com/r/tools 1.25  tools/",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("modules:\n%s\nwant (hidden directories skipped, root first):\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if r.root != dir {
		t.Errorf("root %s, want %s", r.root, dir)
	}
}

func TestVersionsFileMistakesAreErrors(t *testing.T) {
	for _, tt := range []struct {
		name, versions, want string
	}{
		{"no such module", ". v0.1.0\nnope v0.1.0\n", "no go.mod in nope"},
		{"twice", ". v0.1.0\nsub v0.1.0\n./sub v0.1.1\n", "sub named twice"},
		{"not canonical", ". v0.1\n", `"v0.1" is not a canonical`},
		{"no v", ". 0.1.0\n", "not a canonical"},
		{"three fields", ". v0.1.0 extra\n", "want a directory and a version"},
		{"root missing", "sub v0.1.0\n", "the root module (directory .) needs a version"},
		{"major version without suffix", ". v2.0.0\n", "invalid version"},
		{"path not under the root's", ". v0.1.0\nother v0.1.0\n", "a tag other/v0.1.0 releases example.com/r/other"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			files := map[string]string{"versions.txt": tt.versions, "other/go.mod": "module example.com/x\n\ngo 1.25\n"}
			for k, v := range tree {
				if k != "versions.txt" {
					files[k] = v
				}
			}
			_, err := loadRepo(writeTree(t, files))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want one saying %q", err, tt.want)
			}
		})
	}
}

func TestLoadRepoNeedsAVersionsFileAndARootModule(t *testing.T) {
	if _, err := loadRepo(t.TempDir()); err == nil || !strings.Contains(err.Error(), "no versions.txt") {
		t.Errorf("error %v, want one naming versions.txt", err)
	}
	dir := writeTree(t, map[string]string{"versions.txt": "# nothing yet\n"})
	if _, err := loadRepo(dir); err == nil || !strings.Contains(err.Error(), "the root module (directory .) needs a version") {
		t.Errorf("error %v, want one asking for the root module", err)
	}
}
