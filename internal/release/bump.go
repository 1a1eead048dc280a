package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/mod/modfile"
	"golang.org/x/mod/semver"
)

// bump sets, in every go.mod of the repository, each require of a
// published module to the version versions.txt names, and writes go.work
// from the modules found. It returns the files that differ (written when
// write is true).
func (r *repo) bump(write bool) ([]string, error) {
	var changed []string
	update := func(name string, old, data []byte) error {
		if bytes.Equal(old, data) {
			return nil
		}
		changed = append(changed, name)
		if !write {
			return nil
		}
		return os.WriteFile(filepath.Join(r.root, name), data, 0o644)
	}
	for _, m := range r.modules {
		name := filepath.Join(m.Dir, "go.mod")
		old, err := os.ReadFile(filepath.Join(r.root, name))
		if err != nil {
			return changed, err
		}
		f, err := modfile.Parse(name, old, nil)
		if err != nil {
			return changed, err
		}
		for _, req := range f.Require {
			if v := r.version(req.Mod.Path); v != "" && v != req.Mod.Version {
				if err := f.AddRequire(req.Mod.Path, v); err != nil {
					return changed, err
				}
			}
		}
		data, err := f.Format()
		if err != nil {
			return changed, err
		}
		if err := update(name, old, data); err != nil {
			return changed, err
		}
	}
	old, err := os.ReadFile(filepath.Join(r.root, "go.work"))
	if err != nil && !os.IsNotExist(err) {
		return changed, err
	}
	data, err := r.workFile()
	if err != nil {
		return changed, err
	}
	return changed, update("go.work", old, data)
}

// workFile returns the go.work the repository needs: every module in use,
// a go line no lower than any module's, and each published module at its
// coming version replaced by its directory. That replace is why a require
// of a version the module proxy does not have yet resolves in the
// workspace: adding a module to a workspace does not take the place of
// the versions others require (the go command still reads their go.mod).
func (r *repo) workFile() ([]byte, error) {
	goVers := "1.0"
	for _, m := range r.modules {
		if semver.Compare("v"+m.Go, "v"+goVers) > 0 {
			goVers = m.Go
		}
	}
	var b strings.Builder
	b.WriteString("// The workspace for developing the modules of this repository together;\n")
	b.WriteString("// see RELEASING.md. Written by `go run ./internal/release bump`: edit\n")
	b.WriteString("// versions.txt or a go.mod, not this file.\n\n")
	fmt.Fprintf(&b, "go %s\n\nuse (\n", goVers)
	for _, m := range r.modules {
		fmt.Fprintf(&b, "\t%s\n", localPath(m.Dir))
	}
	b.WriteString(")\n\n")
	b.WriteString("// The coming version of each published module is this tree, also where\n")
	b.WriteString("// the module proxy does not have it yet.\n")
	b.WriteString("replace (\n")
	for _, m := range r.published() {
		fmt.Fprintf(&b, "\t%s %s => %s\n", m.Path, m.Version, localPath(m.Dir))
	}
	b.WriteString(")\n")
	f, err := modfile.ParseWork("go.work", []byte(b.String()), nil)
	if err != nil {
		return nil, err
	}
	return modfile.Format(f.Syntax), nil
}

// localPath is how go.work names the directory dir: "." or "./dir".
func localPath(dir string) string {
	if dir == "." {
		return "."
	}
	return "./" + dir
}
