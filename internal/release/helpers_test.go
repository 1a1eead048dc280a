package main

import (
	"os"
	"path/filepath"
	"testing"
)

// tree is a small repository: the root module, a published nested module
// that requires it through a replace at a placeholder version, as this
// repository once did, and an unpublished one.
var tree = map[string]string{
	"versions.txt": "# comment\n.      v0.2.0\nsub    v0.2.0 # the sub module\n",
	"go.mod":       "module example.com/r\n\ngo 1.25\n",
	"r.go":         "package r\n\nconst Name = \"r\"\n",
	"sub/go.mod": "module example.com/r/sub\n\ngo 1.26.0\n\nreplace example.com/r => ../\n\n" +
		"require example.com/r v0.0.0-00010101000000-000000000000\n",
	"sub/sub.go":     "package sub\n\nimport \"example.com/r\"\n\nconst Name = r.Name + \"/sub\"\n",
	"tools/go.mod":   "module example.com/r/tools\n\ngo 1.25\n\nrequire example.com/r/sub v0.1.0\n",
	"tools/tools.go": "package tools\n",
	".hidden/go.mod": "module example.com/hidden\n\ngo 1.25\n",
}

// writeTree writes files into a new directory and returns it.
func writeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, data := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func readFile(t *testing.T, name string) string {
	t.Helper()
	data, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}
