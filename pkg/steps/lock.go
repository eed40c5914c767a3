package steps

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/user"
	"strings"
	"time"

	"github.com/metalk8s/metalk8s/pkg/ssh"
)

// LockInfo says who runs up on a cluster.
type LockInfo struct {
	Owner string    `json:"owner"` // user@machine
	PID   int       `json:"pid"`
	Run   string    `json:"run"`
	Since time.Time `json:"since"`
}

// LockedError: another up holds the cluster.
type LockedError struct {
	Host string
	Info LockInfo
	Raw  string
}

func (e *LockedError) Error() string {
	if e.Info.Owner == "" {
		return fmt.Sprintf("the cluster is locked (%s on %s: %s); if no other run is going on, run again with --force-unlock", lockPath(e.Host), e.Host, strings.TrimSpace(e.Raw))
	}
	return fmt.Sprintf("the cluster is locked by %s (pid %d, run %s) since %s, on %s; if that run is dead, run again with --force-unlock",
		e.Info.Owner, e.Info.PID, e.Info.Run, e.Info.Since.Format(time.RFC3339), e.Host)
}

// lockPath sits beside the host's state directory, not in it, so that
// taking the lock changes nothing that a step checks.
func lockPath(host string) string { return "/var/lib/metalk8s/" + host + ".up.lock" }

// Lock takes the cluster lock on host (the first control-plane host) and
// returns the function that releases it. force removes a stale lock first.
func Lock(ctx context.Context, h Host, run string, force bool) (func(), error) {
	me := "unknown"
	if u, err := user.Current(); err == nil {
		me = u.Username
	}
	machine, _ := os.Hostname()
	info, _ := json.Marshal(LockInfo{Owner: me + "@" + machine, PID: os.Getpid(), Run: run, Since: time.Now().UTC().Truncate(time.Second)})
	p := lockPath(h.Name())
	script := ""
	if force {
		script = "rm -f " + ssh.Quote(p) + "; "
	}
	// noclobber makes the create atomic: one of two racing runs wins.
	script += fmt.Sprintf("mkdir -p /var/lib/metalk8s && if (set -C; umask 077; printf '%%s\\n' %s > %s) 2>/dev/null; then echo taken; else cat %s; fi",
		ssh.Quote(string(info)), ssh.Quote(p), ssh.Quote(p))
	out, err := h.Run(ctx, script)
	if err != nil {
		return nil, fmt.Errorf("take the cluster lock on %s: %w", h.Name(), err)
	}
	if strings.TrimSpace(string(out)) != "taken" {
		le := &LockedError{Host: h.Name(), Raw: string(out)}
		json.Unmarshal(out, &le.Info)
		return nil, le
	}
	release := func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		// Only our own lock: a forced unlock may have handed it on.
		h.Run(rctx, fmt.Sprintf("grep -qF %s %s && rm -f %s; true", ssh.Quote(`"run":"`+run+`"`), ssh.Quote(p), ssh.Quote(p)))
	}
	return release, nil
}
