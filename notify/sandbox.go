package notify

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/landlock-lsm/go-landlock/landlock"
	llsys "github.com/landlock-lsm/go-landlock/landlock/syscall"
)

// Scripts run inside a Landlock sandbox: the runner starts this very binary with sandboxArg,
// which restricts itself to the paths it is given and then execs the script, so the limits
// hold from the script's first instruction. A script can read the system (/usr, /etc, ...),
// its own file, the Parquet files of the tables its owner may see and nothing else of the
// server (no other table, no store, no .env, no /proc), and write only its private temp dir.

// sandboxArg, as the first argument, makes any binary that links this package act as the
// sandbox launcher instead of running its main (tests included).
const sandboxArg = "__analyst_notify_sandbox"

// UnsandboxedEnv, set to 1 in the server's environment, lets scripts run where the kernel has
// no Landlock (Linux before 5.13); without it such a server refuses to run scripts.
const UnsandboxedEnv = "ANALYST_SCRIPTS_UNSANDBOXED"

func init() {
	if len(os.Args) > 1 && os.Args[1] == sandboxArg {
		os.Exit(sandboxMain(os.Args[2:]))
	}
}

// systemDirs are readable (and executable) by every script when they exist.
var systemDirs = []string{"/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc", "/opt"}

// deviceFiles are the devices a script may open.
var deviceFiles = []string{"/dev/null", "/dev/zero", "/dev/urandom", "/dev/random"}

// hostInfo is what runtimes read to size themselves (DuckDB aborts without /proc/self/cgroup
// and /proc/self/maps). Reading another process's environment, memory, fds or root through
// /proc needs ptrace access, which Landlock denies towards processes outside the sandbox, so the
// server's secrets stay out of reach.
var hostInfo = []string{"/proc", "/sys"}

// landlockAvailable reports whether the kernel can enforce the sandbox.
func landlockAvailable() bool {
	v, err := llsys.LandlockGetABIVersion()
	return err == nil && v >= 1
}

// sandboxCommand is the argv that runs argv inside the sandbox.
func sandboxCommand(readOnly []string, writable string, argv []string) ([]string, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	out := []string{self, sandboxArg, "--rw", writable}
	for _, p := range readOnly {
		out = append(out, "--ro", p)
	}
	return append(append(out, "--"), argv...), nil
}

// sandboxMain applies the sandbox and execs the script; it returns only on failure.
func sandboxMain(args []string) int {
	var ro, rw, argv []string
	for i := 0; i < len(args); i++ {
		switch args[i] {
		case "--ro", "--rw":
			if i+1 >= len(args) {
				return sandboxFail(errors.New("missing path"))
			}
			if args[i] == "--ro" {
				ro = append(ro, args[i+1])
			} else {
				rw = append(rw, args[i+1])
			}
			i++
		case "--":
			argv = args[i+1:]
			i = len(args)
		default:
			return sandboxFail(fmt.Errorf("unexpected argument %q", args[i]))
		}
	}
	if len(argv) == 0 {
		return sandboxFail(errors.New("no command"))
	}
	rules := []landlock.Rule{
		landlock.RODirs(existing(systemDirs, true)...),
		landlock.RWFiles(existing(deviceFiles, false)...),
		landlock.RWDirs(rw...),
	}
	for _, p := range existing(append(ro, hostInfo...), false) {
		if fi, err := os.Stat(p); err == nil && fi.IsDir() {
			rules = append(rules, landlock.RODirs(p))
		} else {
			rules = append(rules, landlock.ROFiles(p))
		}
	}
	if landlockAvailable() {
		if err := landlock.V5.BestEffort().RestrictPaths(rules...); err != nil {
			return sandboxFail(err)
		}
	} else if os.Getenv(UnsandboxedEnv) != "1" {
		return sandboxFail(errors.New("this kernel has no Landlock (Linux 5.13 or later), so scripts cannot be isolated"))
	}
	err := syscall.Exec(argv[0], argv, os.Environ())
	return sandboxFail(fmt.Errorf("exec %s: %w", argv[0], err))
}

func sandboxFail(err error) int {
	fmt.Fprintln(os.Stderr, "sandbox:", err)
	return 126
}

// existing keeps the paths that exist (directories only, when dirs is set).
func existing(paths []string, dirs bool) []string {
	var out []string
	for _, p := range paths {
		if fi, err := os.Stat(p); err == nil && (!dirs || fi.IsDir()) {
			out = append(out, p)
		}
	}
	return out
}

// interpreterRoot is what a script's interpreter needs to read: the folder above the one
// holding its executable (a pyenv or venv prefix), or "" for a system interpreter.
func interpreterRoot(path string) string {
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		return ""
	}
	for _, sys := range systemDirs {
		if strings.HasPrefix(real, sys+"/") {
			return ""
		}
	}
	return filepath.Dir(filepath.Dir(real))
}
