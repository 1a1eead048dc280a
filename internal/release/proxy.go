package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/mod/module"
	"golang.org/x/mod/zip"
)

// writeProxy writes into dir a module proxy that GOPROXY=file://dir
// serves: for each published module, the files the GOPROXY protocol names
// (@v/list, @v/VERSION.info, .mod, .zip), the zip made from the module's
// directory by the rules the go command and proxy.golang.org use (nested
// modules, vendor and VCS directories left out). The zip holds the working
// tree, uncommitted files included; the released one holds the tag.
func (r *repo) writeProxy(dir string) error {
	now := time.Now().UTC().Truncate(time.Second)
	for _, m := range r.published() {
		escaped, err := module.EscapePath(m.Path)
		if err != nil {
			return err
		}
		at := filepath.Join(dir, filepath.FromSlash(escaped), "@v")
		if err := os.MkdirAll(at, 0o755); err != nil {
			return err
		}
		gomod, err := os.ReadFile(filepath.Join(r.abs(m.Dir), "go.mod"))
		if err != nil {
			return err
		}
		info, _ := json.Marshal(struct {
			Version string
			Time    time.Time
		}{m.Version, now})
		files := map[string][]byte{
			"list":              []byte(m.Version + "\n"),
			m.Version + ".info": info,
			m.Version + ".mod":  gomod,
		}
		for name, data := range files {
			if err := os.WriteFile(filepath.Join(at, name), data, 0o644); err != nil {
				return err
			}
		}
		if err := writeZip(filepath.Join(at, m.Version+".zip"), m, r.abs(m.Dir)); err != nil {
			return fmt.Errorf("%s: %w", m.Path, err)
		}
	}
	return nil
}

func writeZip(name string, m mod, dir string) error {
	f, err := os.Create(name)
	if err != nil {
		return err
	}
	err = zip.CreateFromDir(f, module.Version{Path: m.Path, Version: m.Version}, dir)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
