package fleet_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/metalk8s/metalk8s/test/fleet"
)

// ssh runs the real OpenSSH client with env added to the environment and
// stdin fed in; it returns the trimmed combined output.
func ssh(t *testing.T, env []string, stdin string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ssh", args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// strict are client options that ignore ~/.ssh and check host keys strictly
// against knownHosts.
func strict(knownHosts string, extra ...string) []string {
	return append([]string{
		"-F", "/dev/null",
		"-o", "UserKnownHostsFile=" + knownHosts,
		"-o", "GlobalKnownHostsFile=/dev/null",
		"-o", "StrictHostKeyChecking=yes",
		"-o", "ConnectTimeout=10",
		"-o", "LogLevel=ERROR",
	}, extra...)
}

func TestFleet(t *testing.T) {
	f := fleet.Start(t, 3)
	batch := func(extra ...string) []string {
		return strict(f.KnownHosts, append([]string{"-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes", "-i", f.Key}, extra...)...)
	}
	noAgent := []string{"SSH_AUTH_SOCK="}

	t.Run("plain hosts answer with their own hostname", func(t *testing.T) {
		plain := f.Plain()
		if len(plain) != 3 {
			t.Fatalf("got %d plain hosts, want 3", len(plain))
		}
		for _, h := range plain {
			out, err := ssh(t, noAgent, "", batch("root@"+h.Addr, "hostname")...)
			if err != nil || out != h.Name {
				t.Errorf("%s (%s): hostname = %q, %v; want %q", h.Name, h.Addr, out, err, h.Name)
			}
		}
	})

	t.Run("hashed known_hosts", func(t *testing.T) {
		h := f.Host("node-002")
		args := strict(f.KnownHostsHashed, "-o", "BatchMode=yes", "-i", f.Key, "root@"+h.Addr, "hostname")
		if out, err := ssh(t, noAgent, "", args...); err != nil || out != h.Name {
			t.Errorf("hostname = %q, %v", out, err)
		}
	})

	t.Run("port host on 2222", func(t *testing.T) {
		h := f.Host("port")
		if h.Port != 2222 {
			t.Fatalf("port host has port %d", h.Port)
		}
		if out, err := ssh(t, noAgent, "", batch("-p", "2222", "root@"+h.Addr, "hostname")...); err != nil || out != "port" {
			t.Errorf("on 2222: hostname = %q, %v", out, err)
		}
		if out, err := ssh(t, noAgent, "", batch("-p", "22", "root@"+h.Addr, "true")...); err == nil {
			t.Errorf("port host answered on 22: %q", out)
		}
	})

	t.Run("hidden only via the bastion", func(t *testing.T) {
		hidden, bastion := f.Host("hidden"), f.Host("bastion")
		// -J does not pass -o/-i to the jump ssh, but -F it does.
		out, err := ssh(t, noAgent, "", "-F", f.SSHConfig, "-J", "root@"+bastion.Addr, "root@"+hidden.Addr, "hostname")
		if err != nil || out != "hidden" {
			t.Errorf("via bastion: hostname = %q, %v", out, err)
		}
		out, err = ssh(t, noAgent, "", batch("-o", "ConnectTimeout=5", "root@"+hidden.Addr, "hostname")...)
		if err == nil {
			t.Errorf("hidden reachable directly: %q", out)
		} else {
			t.Logf("direct: %s", out)
		}
	})

	t.Run("rekeyed refused by strict host key checking", func(t *testing.T) {
		h := f.Host("rekeyed")
		out, err := ssh(t, noAgent, "", batch("root@"+h.Addr, "hostname")...)
		if err == nil || !strings.Contains(out, "REMOTE HOST IDENTIFICATION HAS CHANGED") {
			t.Errorf("rekeyed: err=%v out=%q", err, out)
		}
	})

	t.Run("sudo", func(t *testing.T) {
		h := f.Host("sudopw")
		to := "mk8spw@" + h.Addr
		if out, err := ssh(t, noAgent, "", batch(to, "sudo -S -p '' true")...); err == nil {
			t.Errorf("mk8spw: sudo without password succeeded: %q", out)
		}
		if out, err := ssh(t, noAgent, "wrong\n", batch(to, "sudo -S -p '' true")...); err == nil {
			t.Errorf("mk8spw: sudo with a wrong password succeeded: %q", out)
		}
		out, err := ssh(t, noAgent, f.SudoPassword+"\n", batch(to, "sudo -S -p '' id -u")...)
		if err != nil || out != "0" {
			t.Errorf("mk8spw: sudo with password: %q, %v", out, err)
		}
		out, err = ssh(t, noAgent, "", batch(fleet.NoPasswdUser+"@"+f.Host("node-001").Addr, "sudo -n id -u")...)
		if err != nil || out != "0" {
			t.Errorf("mk8s: passwordless sudo: %q, %v", out, err)
		}
	})

	t.Run("agent key via SSH_AUTH_SOCK", func(t *testing.T) {
		h := f.Host("node-003")
		args := strict(f.KnownHosts, "-o", "BatchMode=yes", "-o", "IdentitiesOnly=no", "root@"+h.Addr, "hostname")
		if out, err := ssh(t, []string{"SSH_AUTH_SOCK=" + f.AgentSock}, "", args...); err != nil || out != h.Name {
			t.Errorf("with agent: %q, %v", out, err)
		}
		if out, err := ssh(t, noAgent, "", args...); err == nil {
			t.Errorf("without agent (and without -i) login succeeded: %q", out)
		}
	})

	t.Run("encrypted key with passphrase", func(t *testing.T) {
		h := f.Host("node-001")
		askpass := filepath.Join(t.TempDir(), "askpass")
		if err := os.WriteFile(askpass, []byte("#!/bin/sh\nexec cat "+f.EncKeyPass+"\n"), 0o700); err != nil {
			t.Fatal(err)
		}
		args := strict(f.KnownHosts, "-o", "IdentitiesOnly=yes", "-i", f.EncKey, "root@"+h.Addr, "hostname")
		env := []string{"SSH_AUTH_SOCK=", "SSH_ASKPASS=" + askpass, "SSH_ASKPASS_REQUIRE=force"}
		if out, err := ssh(t, env, "", args...); err != nil || out != h.Name {
			t.Errorf("with passphrase: %q, %v", out, err)
		}
		if out, err := ssh(t, noAgent, "", append([]string{"-o", "BatchMode=yes"}, args...)...); err == nil {
			t.Errorf("without passphrase login succeeded: %q", out)
		}
	})

	t.Run("SSHArgs helper", func(t *testing.T) {
		for _, name := range []string{"node-001", "port", "hidden", "bastion"} {
			h := f.Host(name)
			if out, err := ssh(t, noAgent, "", append(f.SSHArgs(h, "root"), "hostname")...); err != nil || out != name {
				t.Errorf("%s: %q, %v", name, out, err)
			}
		}
	})

	t.Run("inventory", func(t *testing.T) {
		b, err := os.ReadFile(f.Inventory)
		if err != nil {
			t.Fatal(err)
		}
		inv := string(b)
		for _, want := range []string{"[fleet]", "[variants]", "[kube-master]", "[etcd]", "[kube-node:children]",
			"node-003 ansible_host=" + f.Host("node-003").Addr, "ansible_port=2222",
			"ProxyJump=root@" + f.Host("bastion").Addr, "ansible_become_password=" + f.SudoPassword} {
			if !strings.Contains(inv, want) {
				t.Errorf("inventory lacks %q", want)
			}
		}
	})

	t.Run("stop leaves nothing behind", func(t *testing.T) {
		f.Stop()
		if left := leftovers(t, f.Prefix); left != "" {
			t.Errorf("after Stop: %s", left)
		}
		// (no ssh attempt here: without the bridge, packets to fleet
		// addresses would follow the default route off this machine)
		if procs := processesMentioning(f.Dir); len(procs) > 0 {
			t.Errorf("after Stop, processes still mention %s: %v", f.Dir, procs)
		}
	})
}

// leftovers lists the netns and links of prefix still present.
func leftovers(t *testing.T, prefix string) string {
	t.Helper()
	var left []string
	ns, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(ns), "\n") {
		if strings.HasPrefix(l, prefix+"-") {
			left = append(left, "netns "+strings.Fields(l)[0])
		}
	}
	links, err := exec.Command("ip", "-o", "link", "show").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(links), "\n") {
		if fs := strings.SplitN(l, ": ", 3); len(fs) == 3 && strings.HasPrefix(fs[1], prefix) {
			left = append(left, "link "+fs[1])
		}
	}
	return strings.Join(left, ", ")
}

// processesMentioning lists the command lines that contain s.
func processesMentioning(s string) []string {
	var found []string
	pids, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range pids {
		b, err := os.ReadFile(p)
		if err == nil && strings.Contains(string(b), s) {
			found = append(found, strings.ReplaceAll(string(b), "\x00", " "))
		}
	}
	return found
}

// Two fleets at once (as two test packages would run) must not collide.
func TestParallelFleets(t *testing.T) {
	var mu sync.Mutex
	seen := map[string]bool{}
	for i := 0; i < 2; i++ {
		t.Run(strconv.Itoa(i), func(t *testing.T) {
			t.Parallel()
			f := fleet.Start(t, 2)
			mu.Lock()
			if seen[f.Prefix] || seen["net"+strconv.Itoa(f.Net)] {
				t.Errorf("prefix %s / net %d reused by a concurrent fleet", f.Prefix, f.Net)
			}
			seen[f.Prefix], seen["net"+strconv.Itoa(f.Net)] = true, true
			mu.Unlock()
			for _, h := range f.Plain() {
				if out, err := ssh(t, []string{"SSH_AUTH_SOCK="}, "", append(f.SSHArgs(h, "root"), "hostname")...); err != nil || out != h.Name {
					t.Errorf("%s %s: %q, %v", f.Prefix, h.Name, out, err)
				}
			}
		})
	}
}
