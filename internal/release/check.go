package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// check reports every way the repository is not releasable as it stands:
// a go.mod with a replace (a consumer never sees it, so the module would
// build here and not there), a require of a published module at another
// version than versions.txt, a go.work that bump would change, a go.sum
// line for one of our modules (its hash would be of a tree, not of the
// released version; see RELEASING.md).
func (r *repo) check() error {
	var errs []error
	for _, m := range r.modules {
		name := filepath.Join(m.Dir, "go.mod")
		f, err := parseMod(filepath.Join(r.root, name))
		if err != nil {
			return err
		}
		for _, rep := range f.Replace {
			errs = append(errs, fmt.Errorf("%s:%d: replace %s: a module consumer does not see it; the workspace (go.work) does that job",
				name, rep.Syntax.Start.Line, rep.Old.Path))
		}
		sum, err := os.ReadFile(filepath.Join(r.root, m.Dir, "go.sum"))
		if err != nil && !os.IsNotExist(err) {
			return err
		}
		sc := bufio.NewScanner(bytes.NewReader(sum))
		for n := 1; sc.Scan(); n++ {
			if fields := strings.Fields(sc.Text()); len(fields) > 0 && r.ours(fields[0]) {
				errs = append(errs, fmt.Errorf("%s:%d: a hash of %s: drop it (go run ./internal/release go %s mod tidy)",
					filepath.Join(m.Dir, "go.sum"), n, fields[0], m.Dir))
			}
		}
	}
	changed, err := r.bump(false)
	if err != nil {
		return err
	}
	for _, name := range changed {
		errs = append(errs, fmt.Errorf("%s: not as versions.txt and the modules say: run go run ./internal/release bump", name))
	}
	return errors.Join(errs...)
}
