package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/mod/modfile"
	"golang.org/x/mod/module"
	"golang.org/x/mod/semver"
)

// versionsFile names, at the repository root, the version of each published
// module.
const versionsFile = "versions.txt"

// A mod is one module of the repository.
type mod struct {
	Dir     string // slash-separated, relative to the root; "." for the root module
	Path    string // the module path its go.mod declares
	Go      string // its go line
	Version string // from versions.txt; "" when the module is not published
}

// tag is the git tag that releases m: the version, prefixed by the
// directory for a nested module.
func (m mod) tag() string {
	if m.Dir == "." {
		return m.Version
	}
	return m.Dir + "/" + m.Version
}

// A repo is the repository: its root and every module in it, the root
// module first, then by directory.
type repo struct {
	root    string
	modules []mod
}

// loadRepo finds the root (the nearest directory at or above dir holding
// versions.txt), every go.mod below it, and the published versions.
func loadRepo(dir string) (*repo, error) {
	root, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	for {
		if _, err := os.Stat(filepath.Join(root, versionsFile)); err == nil {
			break
		}
		parent := filepath.Dir(root)
		if parent == root {
			return nil, fmt.Errorf("no %s in %s or above it", versionsFile, dir)
		}
		root = parent
	}
	r := &repo{root: root}
	if r.modules, err = findModules(root); err != nil {
		return nil, err
	}
	if err := r.readVersions(); err != nil {
		return nil, err
	}
	return r, nil
}

// findModules walks root for go.mod files, skipping testdata, vendor and
// hidden directories as the go command does.
func findModules(root string) ([]mod, error) {
	var mods []mod
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			name := d.Name()
			if p != root && (strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") || name == "testdata" || name == "vendor") {
				return filepath.SkipDir
			}
			return nil
		}
		if d.Name() != "go.mod" {
			return nil
		}
		f, err := parseMod(p)
		if err != nil {
			return err
		}
		if f.Module == nil || f.Go == nil {
			return fmt.Errorf("%s: no module or go line", p)
		}
		rel, _ := filepath.Rel(root, filepath.Dir(p))
		mods = append(mods, mod{Dir: filepath.ToSlash(rel), Path: f.Module.Mod.Path, Go: f.Go.Version})
		return nil
	})
	slices.SortFunc(mods, func(a, b mod) int {
		if a.Dir == "." || b.Dir == "." {
			return boolInt(b.Dir == ".") - boolInt(a.Dir == ".")
		}
		return strings.Compare(a.Dir, b.Dir)
	})
	return mods, err
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// readVersions sets the Version of each module versions.txt names. A line
// is a directory and a version; # starts a comment.
func (r *repo) readVersions() error {
	name := filepath.Join(r.root, versionsFile)
	data, err := os.ReadFile(name)
	if err != nil {
		return err
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line, _, _ := strings.Cut(sc.Text(), "#")
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		if len(fields) != 2 {
			return fmt.Errorf("%s:%d: want a directory and a version", name, n)
		}
		dir, vers := path.Clean(fields[0]), fields[1]
		i := slices.IndexFunc(r.modules, func(m mod) bool { return m.Dir == dir })
		switch {
		case i < 0:
			return fmt.Errorf("%s:%d: no go.mod in %s", name, n, dir)
		case r.modules[i].Version != "":
			return fmt.Errorf("%s:%d: %s named twice", name, n, dir)
		case semver.Canonical(vers) != vers:
			return fmt.Errorf("%s:%d: %q is not a canonical semantic version (vX.Y.Z)", name, n, vers)
		}
		m := &r.modules[i]
		if err := module.Check(m.Path, vers); err != nil {
			return fmt.Errorf("%s:%d: %w", name, n, err)
		}
		m.Version = vers
	}
	if len(r.modules) == 0 || r.modules[0].Dir != "." || r.modules[0].Version == "" {
		return fmt.Errorf("%s: the root module (directory .) needs a version", name)
	}
	for _, m := range r.published() {
		if want := path.Join(r.modules[0].Path, m.Dir); m.Path != want {
			return fmt.Errorf("%s: module %s in %s: a tag %s releases %s", name, m.Path, m.Dir, m.tag(), want)
		}
	}
	return sc.Err()
}

// published returns the modules versions.txt names, the root first.
func (r *repo) published() []mod {
	var out []mod
	for _, m := range r.modules {
		if m.Version != "" {
			out = append(out, m)
		}
	}
	return out
}

// version returns the version of the published module path, or "".
func (r *repo) version(modPath string) string {
	for _, m := range r.modules {
		if m.Path == modPath {
			return m.Version
		}
	}
	return ""
}

// ours reports whether modPath is a module of this repository.
func (r *repo) ours(modPath string) bool {
	return slices.ContainsFunc(r.modules, func(m mod) bool { return m.Path == modPath })
}

func (r *repo) abs(dir string) string { return filepath.Join(r.root, filepath.FromSlash(dir)) }

func parseMod(name string) (*modfile.File, error) {
	data, err := os.ReadFile(name)
	if err != nil {
		return nil, err
	}
	return modfile.Parse(name, data, nil)
}
