// Command release keeps the modules of this repository releasable: each
// nested module requires a real, tagged version of the others, never a
// replace, and a module consumer outside the repository can resolve them.
//
// versions.txt at the repository root names the version each published
// module is released at next, one line per module: its directory and its
// version. Every other go.mod below the root (bench, examples) is a module
// that is never published.
//
// Usage, from anywhere in the repository:
//
//	go run ./internal/release bump          set every require of a published module, and go.work, to versions.txt
//	go run ./internal/release check         fail if bump would change something, a go.mod has a replace, or a go.sum names our modules
//	go run ./internal/release proxy DIR     write a file GOPROXY of every published module at its version into DIR
//	go run ./internal/release list          print each published module: path, version, tag
//	go run ./internal/release go DIR ARGS   run `go ARGS` in the nested module DIR as a consumer would (GOWORK=off),
//	                                        the published modules taken from the tree, e.g. `go otel mod tidy`
//	go run ./internal/release tidy          `go mod tidy` that way in every nested module
//
// See RELEASING.md for the release steps.
package main

import (
	"fmt"
	"io"
	"os"
)

const usage = `usage: go run ./internal/release <command>

  bump             set every require of a published module, and go.work, to versions.txt
  check            fail if bump would change a file, a go.mod has a replace, or a go.sum names our modules
  proxy DIR        write a file GOPROXY (GOPROXY=file://DIR) of every published module into DIR
  list             print each published module: path, version, tag
  go DIR ARGS...   run "go ARGS..." in the module DIR with GOWORK=off, the published modules from the tree
  tidy             "go mod tidy" that way in every nested module
`

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "release:", err)
		os.Exit(1)
	}
}

func run(args []string, out io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("no command\n%s", usage)
	}
	cmd, args := args[0], args[1:]
	wd, err := os.Getwd()
	if err != nil {
		return err
	}
	r, err := loadRepo(wd)
	if err != nil {
		return err
	}
	switch {
	case cmd == "bump" && len(args) == 0:
		changed, err := r.bump(true)
		for _, f := range changed {
			fmt.Fprintln(out, "updated", f)
		}
		return err
	case cmd == "check" && len(args) == 0:
		return r.check()
	case cmd == "proxy" && len(args) == 1:
		return r.writeProxy(args[0])
	case cmd == "list" && len(args) == 0:
		for _, m := range r.published() {
			fmt.Fprintln(out, m.Path, m.Version, m.tag())
		}
		return nil
	case cmd == "go" && len(args) >= 2:
		return r.goStandalone(args[0], args[1:])
	case cmd == "tidy" && len(args) == 0:
		for _, m := range r.modules {
			if m.Dir == "." {
				continue
			}
			if err := r.goStandalone(m.Dir, []string{"mod", "tidy"}); err != nil {
				return err
			}
		}
		return nil
	}
	return fmt.Errorf("bad command line %q\n%s", append([]string{cmd}, args...), usage)
}
