package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
)

// goStandalone runs "go args..." in the module in dir as it builds for a
// consumer: outside the workspace (GOWORK=off), so that its own go.mod
// alone chooses the versions. The published modules it requires at a
// version the module proxy may not have yet are taken from the tree,
// through replaces in a temporary copy of its go.mod (-modfile); the go.mod
// and go.sum the command leaves are copied back without those replaces and
// without a line for our modules. This is how a nested module is tidied or
// gets a new dependency (`go mod tidy` and `go get` ignore go.work).
func (r *repo) goStandalone(dir string, args []string) error {
	dir = path.Clean(filepath.ToSlash(dir))
	i := slices.IndexFunc(r.modules, func(m mod) bool { return m.Dir == dir })
	if i < 0 {
		return fmt.Errorf("no module in %s", dir)
	}
	self := r.modules[i]
	gomod := filepath.Join(r.abs(dir), "go.mod")
	f, err := parseMod(gomod)
	if err != nil {
		return err
	}
	var replaced []string
	for _, m := range r.published() {
		if m.Path != self.Path {
			if err := f.AddReplace(m.Path, "", r.abs(m.Dir), ""); err != nil {
				return err
			}
			replaced = append(replaced, m.Path)
		}
	}
	data, err := f.Format()
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "release-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	tmpMod, tmpSum := filepath.Join(tmp, "go.mod"), filepath.Join(tmp, "go.sum")
	sum, err := os.ReadFile(filepath.Join(r.abs(dir), "go.sum"))
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	if err := os.WriteFile(tmpMod, data, 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(tmpSum, sum, 0o644); err != nil {
		return err
	}

	cmd := exec.Command("go", args...)
	cmd.Dir = r.abs(dir)
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS="+strings.TrimSpace(os.Getenv("GOFLAGS")+" -modfile="+tmpMod))
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s: go %s: %w", dir, strings.Join(args, " "), err)
	}

	if f, err = parseMod(tmpMod); err != nil {
		return err
	}
	for _, p := range replaced {
		if err := f.DropReplace(p, ""); err != nil {
			return err
		}
	}
	f.Cleanup()
	if data, err = f.Format(); err != nil {
		return err
	}
	if err := os.WriteFile(gomod, data, 0o644); err != nil {
		return err
	}
	if sum, err = os.ReadFile(tmpSum); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(r.abs(dir), "go.sum"), r.dropOurSums(sum), 0o644)
}

// dropOurSums returns the go.sum data without the lines for modules of
// this repository.
func (r *repo) dropOurSums(sum []byte) []byte {
	var out bytes.Buffer
	sc := bufio.NewScanner(bytes.NewReader(sum))
	for sc.Scan() {
		if fields := strings.Fields(sc.Text()); len(fields) == 0 || !r.ours(fields[0]) {
			out.WriteString(sc.Text() + "\n")
		}
	}
	return out.Bytes()
}
