package steps

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/metalk8s/metalk8s/pkg/ssh"
)

// diagCommands gather what helps explain a failure on a host.
var diagCommands = []struct{ file, cmd string }{
	{"os-release.txt", "cat /etc/os-release"},
	{"uname.txt", "uname -a"},
	{"uptime.txt", "uptime"},
	{"df.txt", "df -h"},
	{"free.txt", "free -m"},
	{"ip-addr.txt", "ip addr"},
	{"dmesg-tail.txt", "dmesg 2>&1 | tail -n 100"},
	{"listening.txt", "ss -Hltnp 2>&1 || netstat -ltnp 2>&1"},
}

// CollectDiag writes dir/RUN-HOST.tar.gz with the failed step, its error
// and output, the journal of its units, the tail of dmesg and OS facts.
// Commands that fail (an unreachable host) are noted, not fatal.
func CollectDiag(ctx context.Context, h Host, o *Outcome, dir, run string, mask func(string) string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	add := func(name, content string) error {
		data := []byte(mask(content))
		hdr := &tar.Header{Name: "diag/" + name, Mode: 0o600, Size: int64(len(data)), ModTime: time.Now()}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	summary := fmt.Sprintf("host:    %s\nstep:    %s\nphase:   %s\nstatus:  %s\nattempts: %d\nerror:\n%v\n",
		o.Step.Host, o.Step.ID, o.Step.Phase, o.Status, o.Attempts, o.Err)
	if len(o.Change.Diff) > 0 {
		summary += "diff:\n  " + strings.Join(o.Change.Diff, "\n  ") + "\n"
	}
	if err := add("step.txt", summary); err != nil {
		return "", err
	}
	cmds := diagCommands
	for _, u := range o.Step.Units {
		cmds = append(cmds, struct{ file, cmd string }{"journal-" + u + ".txt", "journalctl -u " + u + " --no-pager -n 300 2>&1"})
	}
	var extra []string
	for f := range o.Step.Diag {
		extra = append(extra, f)
	}
	sort.Strings(extra)
	for _, f := range extra {
		cmds = append(cmds, struct{ file, cmd string }{f, o.Step.Diag[f]})
	}
	for _, c := range cmds {
		out, err := h.Run(ctx, c.cmd)
		content := string(out)
		if err != nil {
			content += fmt.Sprintf("\n[%s: %v]\n", c.cmd, err)
		}
		if err := add(c.file, content); err != nil {
			return "", err
		}
		if err != nil && ssh.Transient(err) {
			// The host is unreachable: the other commands would fail too.
			if err := add("unreachable.txt", fmt.Sprintf("the host did not answer: %v\n", err)); err != nil {
				return "", err
			}
			break
		}
	}
	if err := tw.Close(); err != nil {
		return "", err
	}
	if err := gz.Close(); err != nil {
		return "", err
	}
	p := filepath.Join(dir, run+"-"+o.Step.Host+".tar.gz")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	return p, WriteFileAtomic(p, buf.Bytes(), 0o600)
}
