// Package lab holds the end-to-end test of metalk8s on the VM lab: real
// Debian 12 VMs under QEMU, booted by lab.sh (next to this file).
//
// TestLab builds metalk8s, boots a lab of 3 nodes of its own (name
// mk8se2e, LAB_DIR .lab/e2e, SSH forwards 127.0.0.1:2321-2323, so a lab that
// a developer has up is left alone), runs `metalk8s exec` and `metalk8s up`
// (twice) on it, takes it down and checks that nothing of it is left.
//
// It needs root and minutes: it is skipped as non-root, with -short, and
// when METALK8S_E2E=0. The image cache (.cache/lab) is shared with
// `make lab-up`. METALK8S_BIN=PATH tests that binary instead of building one.
package lab

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

const (
	labName = "mk8se2e"
	sshBase = 2320
	apiBase = 6540
	nodes   = 3
)

type lab struct {
	t      *testing.T
	repo   string
	script string
	dir    string // LAB_DIR
	inv    string // inventory/hosts.ini
	known  string // inventory/known_hosts
	bin    string // metalk8s built for this test
}

func TestLab(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the VM lab takes minutes")
	}
	if os.Getenv("METALK8S_E2E") == "0" {
		t.Skip("METALK8S_E2E=0")
	}
	if os.Geteuid() != 0 {
		t.Skip("the VM lab needs root (QEMU taps, network namespaces, mmdebstrap)")
	}
	repo, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	l := &lab{
		t:      t,
		repo:   repo,
		script: filepath.Join(repo, "test/lab/lab.sh"),
		dir:    filepath.Join(repo, ".lab/e2e"),
	}
	l.inv = filepath.Join(l.dir, "inventory/hosts.ini")
	l.known = filepath.Join(l.dir, "inventory/known_hosts")
	l.bin = filepath.Join(t.TempDir(), "metalk8s")

	start := time.Now()
	if bin := os.Getenv("METALK8S_BIN"); bin != "" {
		l.bin = bin // a binary built elsewhere (a release, another tree)
	} else {
		gobin, err := exec.LookPath("go")
		if err != nil {
			gobin = filepath.Join(os.Getenv("GOROOT"), "bin/go")
		}
		l.run(5*time.Minute, gobin, "build", "-o", l.bin, "../../cmd/metalk8s")
		t.Logf("built %s in %v", l.bin, since(start))
	}

	// Whatever happens below, the lab goes down (and a crashed earlier run
	// of this test is cleaned up by `up` itself).
	t.Cleanup(func() {
		if out, err := l.sh(3*time.Minute, "down"); err != nil {
			t.Errorf("lab down: %v\n%s", err, out)
		}
	})

	t0 := time.Now()
	out, err := l.sh(20*time.Minute, "up", fmt.Sprint(nodes))
	t.Logf("lab.sh up %d: %v\n%s", nodes, since(t0), out)
	if err != nil {
		t.Fatalf("lab.sh up: %v", err)
	}

	t.Run("inventory", func(t *testing.T) {
		out := l.metalk8s(t, 2*time.Minute, "inventory", "--check", l.inv)
		t.Logf("inventory --check:\n%s", out)
	})

	t.Run("exec", func(t *testing.T) {
		t0 := time.Now()
		out := l.metalk8s(t, 5*time.Minute, "exec", "-i", l.inv, "--known-hosts", l.known, "--", "hostname")
		t.Logf("exec hostname: %v\n%s", since(t0), out)
		for i := 1; i <= nodes; i++ {
			name := fmt.Sprintf("node%d", i)
			want := fmt.Sprintf("== %s: ok\n%s\n", name, name)
			if !strings.Contains(out, want) {
				t.Errorf("%s did not answer with its own name (want %q)", name, want)
			}
		}
		// Fresh VMs: two data disks with nothing on them.
		out = l.metalk8s(t, 5*time.Minute, "exec", "-i", l.inv, "--known-hosts", l.known, "--",
			"lsblk -dno NAME,SIZE /dev/vdb /dev/vdc && ! blkid /dev/vdb /dev/vdc")
		blank := regexp.MustCompile(`(?m)^== node[0-9]+: ok\nvdb +80G\nvdc +80G$`)
		if n := len(blank.FindAllString(out, -1)); n != nodes {
			t.Errorf("%d nodes of %d have blank 80G disks vdb and vdc:\n%s", n, nodes, out)
		}
	})

	t.Run("host-keys-verified", func(t *testing.T) {
		// The same keys, each on the wrong node: every connection must be
		// refused, none trusted.
		data, err := os.ReadFile(l.known)
		if err != nil {
			t.Fatal(err)
		}
		keys := map[string]string{} // "[127.0.0.1]:PORT" -> "type base64"
		var ports []string
		for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
			f := strings.Fields(line)
			if len(f) >= 3 && strings.HasPrefix(f[0], "[127.0.0.1]:") {
				keys[f[0]] = f[1] + " " + f[2]
				ports = append(ports, f[0])
			}
		}
		if len(ports) != nodes {
			t.Fatalf("known_hosts has %d loopback entries, want %d:\n%s", len(ports), nodes, data)
		}
		var rot bytes.Buffer
		for i, p := range ports {
			fmt.Fprintf(&rot, "%s %s\n", p, keys[ports[(i+1)%len(ports)]])
		}
		wrong := filepath.Join(t.TempDir(), "known_hosts")
		if err := os.WriteFile(wrong, rot.Bytes(), 0o600); err != nil {
			t.Fatal(err)
		}
		out, err := l.metalk8sErr(2*time.Minute, "exec", "-i", l.inv, "--known-hosts", wrong, "--", "hostname")
		if err == nil {
			t.Fatalf("exec with the wrong host keys succeeded:\n%s", out)
		}
		if n := strings.Count(out, ": ok\n"); n != 0 {
			t.Errorf("%d nodes answered despite the wrong host keys:\n%s", n, out)
		}
	})

	// The offline bundle, from artifacts built from the Go module proxy and
	// served on loopback as the release sites would serve them.
	t0 = time.Now()
	cmd := exec.Command(filepath.Join(repo, "test/lab/bundle.sh"), l.bin)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	bout, err := cmd.Output()
	t.Logf("bundle.sh: %v\n%s", since(t0), lastLines(stderr.String(), 30))
	if err != nil {
		t.Fatalf("bundle.sh: %v", err)
	}
	bundleDir := strings.TrimSpace(lastLines(string(bout), 1))

	t.Run("up", func(t *testing.T) {
		t0 := time.Now()
		out := l.metalk8s(t, 40*time.Minute, "up", l.inv, "--known-hosts", l.known, "--bundle", bundleDir)
		t.Logf("metalk8s up --bundle (1st): %v\n%s", since(t0), out)

		// Every node has the packages, binaries and images, from the bundle.
		out = l.metalk8s(t, 5*time.Minute, "exec", "-i", l.inv, "--known-hosts", l.known, "--",
			"dpkg-query -W -f='${Package} ${Status}\\n' lvm2 ipvsadm conntrack socat ebtables ipset | grep -c ' install ok installed$';"+
				" kubeadm version -o short; runc --version | head -1; systemctl is-active containerd;"+
				" crictl images -o json | grep -c '\"registry.k8s.io/'")
		t.Logf("installed:\n%s", out)
		want := regexp.MustCompile(`(?m)^== node[0-9]+: ok\n6\nv1\.34\.4\nrunc version 1\.3\.6\nactive\n6$`)
		if n := len(want.FindAllString(out, -1)); n != nodes {
			t.Errorf("%d nodes of %d have the 6 packages, kubeadm v1.34.4, runc 1.3.6, containerd running and 6 images", n, nodes)
		}

		t1 := time.Now()
		out = l.metalk8s(t, 20*time.Minute, "up", l.inv, "--known-hosts", l.known, "--bundle", bundleDir)
		t.Logf("metalk8s up --bundle (2nd): %v\n%s", since(t1), out)
		if !strings.Contains(out, " 0 steps changed") {
			t.Errorf("the second up changed something")
		}
		// ... and wrote nothing but its journal: no upload in its log.
		m := regexp.MustCompile(`(?m)^log: (\S+)$`).FindStringSubmatch(out)
		if m == nil {
			t.Fatal("no log path in the output of up")
		}
		logPath := m[1]
		if !filepath.IsAbs(logPath) {
			logPath = filepath.Join(l.repo, logPath) // metalk8s ran in the repo
		}
		log, err := os.ReadFile(logPath)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(log), "\n") {
			if strings.Contains(line, " upload ") && strings.Contains(line, ": written") && !strings.Contains(line, "/journal/") {
				t.Errorf("second up uploaded: %s", line)
			}
		}
	})

	t.Run("down", func(t *testing.T) {
		// As after a crash of the harness: the pid files and the lab's
		// state are gone, and `down` must still find every VM by the marker
		// in QEMU's command line.
		for i := 1; i <= nodes; i++ {
			os.Remove(filepath.Join(l.dir, fmt.Sprintf("run/node%d/qemu.pid", i)))
		}
		os.Remove(filepath.Join(l.dir, "lab.env"))
		if left := leftovers(t); len(left) == 0 {
			t.Fatal("no QEMU, netns or tap of the lab found while it is up: the check below proves nothing")
		}
		t0 := time.Now()
		out, err := l.sh(3*time.Minute, "down")
		if err != nil {
			t.Fatalf("lab.sh down: %v\n%s", err, out)
		}
		t.Logf("lab.sh down: %v", since(t0))
		if left := leftovers(t); len(left) > 0 {
			t.Errorf("left behind after down:\n%s", strings.Join(left, "\n"))
		}
		// idempotent
		if out, err := l.sh(3*time.Minute, "down"); err != nil {
			t.Errorf("second lab.sh down: %v\n%s", err, out)
		}
	})
	t.Logf("whole lab test: %v", since(start))
}

// leftovers lists what of the test's lab exists on this machine: QEMU
// processes (by the marker in their command line), the netns, taps.
func leftovers(t *testing.T) []string {
	t.Helper()
	var left []string
	marker := regexp.MustCompile(`^guest=metalk8s-lab:` + labName + `:node[0-9]+,`)
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		data, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		for _, arg := range strings.Split(string(data), "\x00") {
			if marker.MatchString(arg) {
				left = append(left, "process "+filepath.Base(filepath.Dir(p))+": "+arg)
			}
		}
	}
	if out, err := exec.Command("ip", "netns", "list").Output(); err != nil {
		t.Errorf("ip netns list: %v", err)
	} else {
		for _, line := range strings.Split(string(out), "\n") {
			if f := strings.Fields(line); len(f) > 0 && f[0] == labName {
				left = append(left, "netns "+labName)
			}
		}
	}
	links, _ := os.ReadDir("/sys/class/net")
	for _, e := range links {
		if strings.HasPrefix(e.Name(), labName+"t") {
			left = append(left, "link "+e.Name())
		}
	}
	return left
}

// sh runs lab.sh with the test's lab settings.
func (l *lab) sh(timeout time.Duration, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, l.script, args...)
	cmd.Env = append(os.Environ(),
		"LAB_DIR="+l.dir,
		"LAB_NAME="+labName,
		fmt.Sprintf("LAB_SSH_PORT=%d", sshBase),
		fmt.Sprintf("LAB_API_PORT=%d", apiBase),
	)
	cmd.WaitDelay = 10 * time.Second
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// metalk8s runs the test's binary and fails the test if it fails.
func (l *lab) metalk8s(t *testing.T, timeout time.Duration, args ...string) string {
	t.Helper()
	out, err := l.metalk8sErr(timeout, args...)
	if err != nil {
		t.Fatalf("metalk8s %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func (l *lab) metalk8sErr(timeout time.Duration, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, l.bin, args...)
	cmd.Dir = l.repo
	cmd.WaitDelay = 10 * time.Second
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func (l *lab) run(timeout time.Duration, name string, args ...string) {
	l.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	if out, err := cmd.CombinedOutput(); err != nil {
		l.t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

// lastLines returns the last n lines of s.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func since(t time.Time) time.Duration { return time.Since(t).Round(100 * time.Millisecond) }
