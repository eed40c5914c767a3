package steps

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/metalk8s/metalk8s/pkg/ssh"
)

// RunLog is the full record of a run: every command, its exit code and
// output, with secrets masked. A nil RunLog records nothing.
type RunLog struct {
	Path    string
	mu      sync.Mutex
	f       *os.File
	secrets []string
}

// OpenRunLog creates dir/RUN.log, readable by its owner only.
func OpenRunLog(dir, run string, secrets []string) (*RunLog, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create log directory: %w", err)
	}
	p := filepath.Join(dir, run+".log")
	f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("create run log: %w", err)
	}
	var keep []string
	for _, s := range secrets {
		if s != "" {
			keep = append(keep, s)
		}
	}
	return &RunLog{Path: p, f: f, secrets: keep}, nil
}

// Mask hides the run's secrets in s.
func (l *RunLog) Mask(s string) string {
	if l == nil {
		return s
	}
	for _, sec := range l.secrets {
		s = strings.ReplaceAll(s, sec, "********")
	}
	return s
}

// Printf writes a line.
func (l *RunLog) Printf(format string, args ...any) {
	if l == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(l.f, "%s %s\n", time.Now().UTC().Format("2006-01-02T15:04:05.000Z"), l.Mask(fmt.Sprintf(format, args...)))
}

// Command records one command and what came of it.
func (l *RunLog) Command(host, cmd string, res *ssh.Result, err error, took time.Duration) {
	if l == nil {
		return
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s $ %s\n", host, cmd)
	if res != nil {
		fmt.Fprintf(&b, "    exit %d in %s\n", res.ExitCode, took.Round(time.Millisecond))
		indent(&b, "    | ", res.Stdout)
		indent(&b, "    ! ", res.Stderr)
	}
	if err != nil {
		if _, isExit := ssh.ExitCode(err); !isExit {
			fmt.Fprintf(&b, "    error: %v\n", err)
		}
	}
	l.Printf("%s", strings.TrimSuffix(b.String(), "\n"))
}

// Upload records a file copy.
func (l *RunLog) Upload(host, path, src string, changed bool, err error) {
	switch {
	case err != nil:
		l.Printf("%s upload %s (from %s): %v", host, path, src, err)
	case changed:
		l.Printf("%s upload %s (from %s): written", host, path, src)
	default:
		l.Printf("%s upload %s (from %s): unchanged", host, path, src)
	}
}

func indent(b *strings.Builder, prefix string, data []byte) {
	s := strings.TrimRight(string(data), "\n")
	if s == "" {
		return
	}
	for _, line := range strings.Split(s, "\n") {
		b.WriteString(prefix + line + "\n")
	}
}

// Close closes the log file.
func (l *RunLog) Close() error {
	if l == nil {
		return nil
	}
	return l.f.Close()
}
