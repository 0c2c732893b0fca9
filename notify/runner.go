package notify

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ai-data-analyst/analyst/config"
)

// Runner limits.
const (
	DefaultTimeout     = 60 * time.Second
	DefaultMemoryLimit = 4 << 30 // address space (RLIMIT_AS) of the script's processes
	maxStdout          = 1 << 20
	maxStderr          = 64 << 10
	maxImage           = 10 << 20
)

// Runner runs one script as a child process: its own process group, a time limit (the whole
// group is killed when it passes), a memory limit (ulimit -v: RLIMIT_AS of each process) and a
// CPU-time limit (ulimit -t), a clean environment, and a private temp dir that is its home and
// working directory and holds a DuckDB database with views of only the tables the user may see.
type Runner struct {
	ParquetRoot string
	TempRoot    string        // where the private temp dirs go ("" = the OS temp dir)
	Timeout     time.Duration // default and upper bound of a script's own "# timeout:"
	MemoryLimit int64         // bytes; 0 = DefaultMemoryLimit, <0 = none
	Python      string        // interpreter of *.py scripts ("" = python3 from PATH, if any)
	AnalystBin  string        // offered to scripts as $ANALYST_BIN ("" = this executable)
	Instance    string
}

// Run is one execution of a script.
type Run struct {
	Script  *Script
	User    string
	Tables  []config.Table // what the user may see
	Trigger string
	Table   string // the table whose publication triggered the run
}

// Outcome is what a run produced. Err is set for every run that cannot notify: a non-zero exit,
// a timeout, empty or invalid output; it reads well in the portal and in Telegram.
type Outcome struct {
	Result   Result
	Err      error
	Warning  string // e.g. an image_path that could not be used
	Stderr   string // the head of stderr, for the portal
	Duration time.Duration
	Image    []byte // the image named by image_path, read before the temp dir went away
	ImageExt string // ".png" or ".jpg"
}

// scriptPath is the PATH scripts get: system binaries only.
const scriptPath = "/usr/local/bin:/usr/bin:/bin"

// Run runs the script and always returns an outcome; errors of the server itself (no temp dir,
// no database) are returned as Outcome.Err too, so the script shows what went wrong.
func (r *Runner) Run(ctx context.Context, run Run) Outcome {
	start := time.Now()
	out := r.run(ctx, run)
	out.Duration = time.Since(start)
	return out
}

func (r *Runner) run(ctx context.Context, run Run) Outcome {
	timeout := r.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	if run.Script.Timeout > 0 && run.Script.Timeout < timeout {
		timeout = run.Script.Timeout
	}
	tmp, err := os.MkdirTemp(r.TempRoot, "analyst-notify-*")
	if err != nil {
		return Outcome{Err: fmt.Errorf("server: private temp dir: %w", err)}
	}
	defer os.RemoveAll(tmp)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	dbPath := filepath.Join(tmp, "analytics.duckdb")
	if err := BuildDatabase(ctx, dbPath, r.ParquetRoot, run.Tables); err != nil {
		return Outcome{Err: fmt.Errorf("server: build the script's database: %w", err)}
	}
	os.Chmod(dbPath, 0o400)

	argv, err := r.command(run.Script)
	if err != nil {
		return Outcome{Err: err}
	}
	limits := ""
	if mem := r.memoryLimit(); mem > 0 {
		limits += "ulimit -v " + strconv.FormatInt(mem/1024, 10) + " && "
	}
	cpu := int64(timeout/time.Second) + 1
	limits += "ulimit -t " + strconv.FormatInt(cpu, 10) + " && "
	// The limits are set by a shell before the script is exec'ed, so they cover it from its
	// first instruction (a prlimit after start would leave a window).
	sandboxed, err := sandboxCommand(r.readable(run, argv), tmp,
		append([]string{"/bin/sh", "-c", limits + `exec "$0" "$@"`}, argv...))
	if err != nil {
		return Outcome{Err: fmt.Errorf("server: %w", err)}
	}
	cmd := exec.CommandContext(ctx, sandboxed[0], sandboxed[1:]...)
	cmd.Dir = tmp
	cmd.Env = r.env(run, tmp, dbPath)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 2 * time.Second
	stdout := &capped{limit: maxStdout}
	stderr := &capped{limit: maxStderr}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	cmd.Stdin = nil
	err = cmd.Run()
	// Children left behind by a script that exited go with it.
	if cmd.Process != nil {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	out := Outcome{Stderr: strings.TrimSpace(excerpt(stderr.buf.Bytes(), 500))}
	switch {
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		out.Err = fmt.Errorf("timed out after %s", timeout)
		return out
	case ctx.Err() != nil:
		out.Err = fmt.Errorf("cancelled: the server is stopping")
		return out
	case err != nil:
		msg := err.Error()
		if out.Stderr != "" {
			msg += ": " + out.Stderr
		}
		out.Err = errors.New(msg)
		return out
	case stdout.over:
		out.Err = fmt.Errorf("stdout is over %d bytes; print one JSON object", maxStdout)
		return out
	}
	out.Result, out.Err = ParseResult(stdout.buf.Bytes())
	if out.Err == nil && out.Result.Notify && out.Result.ImagePath != "" {
		out.Image, out.ImageExt, err = readImage(tmp, out.Result.ImagePath)
		if err != nil {
			out.Warning = "image not sent: " + err.Error()
		}
	}
	return out
}

// command is how a script is started: *.py with Python, *.sh with /bin/sh, anything else as an
// executable (it needs a #! line).
func (r *Runner) command(s *Script) ([]string, error) {
	switch filepath.Ext(s.Name) {
	case ".py":
		py := r.Python
		if py == "" {
			p, err := exec.LookPath("python3")
			if err != nil {
				return nil, errors.New("python3 is not installed on the server; use a shell script or ask the administrator")
			}
			py = p
		}
		return []string{py, s.Path}, nil
	case ".sh":
		return []string{"/bin/sh", s.Path}, nil
	}
	head := make([]byte, 2)
	if f, err := os.Open(s.Path); err == nil {
		io.ReadFull(f, head)
		f.Close()
	}
	if string(head) != "#!" {
		return nil, fmt.Errorf("%s: name it .py or .sh, or start it with a #! line naming its interpreter", s.Name)
	}
	return []string{s.Path}, nil
}

// readable is what the sandbox lets a run read besides the system: the script, its interpreter,
// the analyst binary ($ANALYST_BIN) and the Parquet of the tables the user may see.
func (r *Runner) readable(run Run, argv []string) []string {
	paths := []string{run.Script.Path}
	if root := interpreterRoot(argv[0]); root != "" {
		paths = append(paths, root)
	}
	if bin := r.AnalystBin; bin != "" {
		paths = append(paths, bin)
	}
	if self, err := os.Executable(); err == nil {
		paths = append(paths, self)
	}
	for _, t := range run.Tables {
		base := filepath.Join(r.ParquetRoot, t.Folder, t.Name)
		if t.IsPartitioned() {
			paths = append(paths, base)
		} else {
			paths = append(paths, base+".parquet")
		}
	}
	return paths
}

func (r *Runner) memoryLimit() int64 {
	if r.MemoryLimit == 0 {
		return DefaultMemoryLimit
	}
	return r.MemoryLimit
}

func (r *Runner) env(run Run, tmp, dbPath string) []string {
	bin := r.AnalystBin
	if bin == "" {
		bin, _ = os.Executable()
	}
	return []string{
		"PATH=" + scriptPath,
		"HOME=" + tmp,
		"TMPDIR=" + tmp,
		"LANG=C.UTF-8",
		"LC_ALL=C.UTF-8",
		"MPLCONFIGDIR=" + filepath.Join(tmp, ".matplotlib"),
		"MPLBACKEND=Agg",
		"PYTHONDONTWRITEBYTECODE=1",
		"ANALYST_DUCKDB=" + dbPath,
		"ANALYST_BIN=" + bin,
		"ANALYST_USER=" + run.User,
		"ANALYST_SCRIPT=" + run.Script.Name,
		"ANALYST_TRIGGER=" + run.Trigger,
		"ANALYST_TABLE=" + run.Table,
		"ANALYST_INSTANCE=" + r.Instance,
	}
}

// readImage reads the image a script named: it must be a PNG or JPEG file inside the script's
// temp dir (a script cannot make the server send any other file).
func readImage(tmp, p string) ([]byte, string, error) {
	if !filepath.IsAbs(p) {
		p = filepath.Join(tmp, p)
	}
	real, err := filepath.EvalSymlinks(p)
	if err != nil {
		return nil, "", fmt.Errorf("%s does not exist", p)
	}
	root, _ := filepath.EvalSymlinks(tmp)
	if rel, err := filepath.Rel(root, real); err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
		return nil, "", fmt.Errorf("%s is outside the script's temp dir ($TMPDIR)", p)
	}
	f, err := os.Open(real)
	if err != nil {
		return nil, "", err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxImage+1))
	if err != nil {
		return nil, "", err
	}
	if len(data) > maxImage {
		return nil, "", fmt.Errorf("%s is over %d MiB", p, maxImage>>20)
	}
	switch http.DetectContentType(data) {
	case "image/png":
		return data, ".png", nil
	case "image/jpeg":
		return data, ".jpg", nil
	}
	return nil, "", fmt.Errorf("%s is not a PNG or JPEG image", p)
}

// capped keeps the first limit bytes written and notes that more came.
type capped struct {
	buf   bytes.Buffer
	limit int
	over  bool
}

func (c *capped) Write(p []byte) (int, error) {
	room := c.limit - c.buf.Len()
	if len(p) > room {
		c.over = true
	}
	c.buf.Write(p[:max(0, min(len(p), room))])
	return len(p), nil
}
