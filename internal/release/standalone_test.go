package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// go mod tidy of a nested module outside the workspace, its require of the
// root at a version no proxy has: the root comes from the tree, and
// neither the replace nor a hash of the root stays behind.
func TestGoStandaloneTakesOurModulesFromTheTree(t *testing.T) {
	files := map[string]string{
		"sub/go.mod": "module example.com/r/sub\n\ngo 1.26.0\n\nrequire example.com/r v0.2.0\n",
		"sub/go.sum": "example.com/r v0.2.0/go.mod h1:stale=\n",
	}
	for k, v := range tree {
		if _, ok := files[k]; !ok {
			files[k] = v
		}
	}
	dir := writeTree(t, files)
	r, err := loadRepo(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("GOPROXY", "off")
	if err := r.goStandalone("sub", []string{"mod", "tidy"}); err != nil {
		t.Fatal(err)
	}
	if got, want := readFile(t, filepath.Join(dir, "sub/go.mod")), files["sub/go.mod"]; got != want {
		t.Errorf("go.mod after tidy:\n%s\nwant:\n%s", got, want)
	}
	if got := readFile(t, filepath.Join(dir, "sub/go.sum")); strings.Contains(got, "example.com/r ") {
		t.Errorf("go.sum after tidy names the root:\n%s", got)
	}
	if err := r.goStandalone("sub", []string{"vet", "./..."}); err != nil {
		t.Errorf("go vet outside the workspace: %v", err)
	}
	if err := r.goStandalone("nope", []string{"vet"}); err == nil {
		t.Error("no error for a directory without a module")
	}
	if _, err := os.Stat(filepath.Join(dir, "sub", "go.work")); !os.IsNotExist(err) {
		t.Errorf("a go.work left behind: %v", err)
	}
}
