package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestExitCodes runs every command with bad flags, bad arguments and
// missing files: each exits 2 (1 for a failure), prints nothing on stdout
// and one line on stderr naming the problem. None reaches a host.
func TestExitCodes(t *testing.T) {
	home := isolate(t)
	dir := t.TempDir()
	inv := filepath.Join(dir, "hosts.ini")
	example, err := os.ReadFile("../../examples/hosts.ini")
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(inv, example, 0o600)
	withBundle := filepath.Join(dir, "bundled.ini")
	os.WriteFile(withBundle, append(example, "metalk8s_bundle=nowhere\n"...), 0o600)
	missing := filepath.Join(dir, "missing.ini")
	notBundle := t.TempDir()
	pki := filepath.Join(dir, "artifacts", "pki")
	// A bundle holding node_exporter only, and an inventory with the
	// addons off (their images are asked first).
	thin := t.TempDir()
	os.WriteFile(filepath.Join(thin, "manifest.json"), []byte(`{"versions":{"kube":"v1.36.3"},"files":[{"name":"node_exporter","path":"bin/node_exporter","sha256":"`+strings.Repeat("0", 64)+`","size":1}],"images":[]}`), 0o644)
	noAddons := filepath.Join(dir, "no-addons.ini")
	os.WriteFile(noAddons, append(example, "[all:vars]\nmetalk8s_metrics_server_enabled=false\nmetalk8s_traefik_enabled=false\nmetalk8s_headlamp_enabled=false\nmetalk8s_monitoring_enabled=false\nmetalk8s_logging_enabled=false\n"...), 0o600)
	for _, c := range []struct {
		args []string
		code int
		want []string // in the one line of stderr
	}{
		// top level and groups of commands
		{[]string{"nosuch"}, 2, []string{`unknown command "nosuch"; see metalk8s --help`}},
		{[]string{"--bogus"}, 2, []string{"unknown flag --bogus"}},
		{[]string{"-x", "plan", inv}, 2, []string{"unknown flag -x"}},
		{[]string{"etcd", "bogus"}, 2, []string{`etcd: unknown command "bogus"; see metalk8s etcd --help`}},
		{[]string{"etcd", "snapshot", "bogus"}, 2, []string{`etcd snapshot: unknown command "bogus"`}},
		{[]string{"bundle", "bogus"}, 2, []string{`bundle: unknown command "bogus"`}},
		{[]string{"version", "now"}, 2, []string{"version: unexpected arguments: now"}},
		{[]string{"help", "nosuch"}, 2, []string{`unknown command "nosuch"; see metalk8s --help`}},
		{[]string{"--version", "extra"}, 2, []string{"--version takes no command or argument", `"extra"`}},
		{[]string{"-v", "--version", "plan", inv}, 2, []string{"--version takes no command or argument"}},

		// up, plan, add-node: checked before any host is reached
		{[]string{"up"}, 2, []string{"up: no inventory given"}},
		{[]string{"up", missing}, 2, []string{missing, "cannot read inventory"}},
		{[]string{"up", inv, "extra"}, 2, []string{"up: unexpected arguments after the inventory: [extra]"}},
		{[]string{"up", inv, "--bogus"}, 2, []string{"up: unknown flag --bogus"}},
		{[]string{"up", inv, "--bundle", notBundle}, 2, []string{"--bundle: " + notBundle + " is not a bundle: no manifest.json"}},
		{[]string{"up", inv, "--bundle", missing}, 2, []string{"--bundle: " + missing + " is not a bundle"}},
		{[]string{"up", withBundle}, 2, []string{"metalk8s_bundle of " + withBundle + ": " + filepath.Join(dir, "nowhere") + " is not a bundle"}},
		{[]string{"up", inv, "--only", "nonsense"}, 2, []string{`--only: unknown phase "nonsense"`}},
		{[]string{"up", inv, "--timeout", "soon"}, 2, []string{`up: invalid value "soon" for --timeout`, "90s"}},
		{[]string{"up", inv, "--connect-timeout"}, 2, []string{"up: flag needs an argument: --connect-timeout"}},
		{[]string{"up", inv, "--connect-timeout", "0"}, 2, []string{`invalid value "0" for --connect-timeout: give more than 0`}},
		{[]string{"up", inv, "--forks", "0"}, 2, []string{"--forks must be at least 1"}},
		{[]string{"plan"}, 2, []string{"plan: no inventory given"}},
		{[]string{"plan", missing}, 2, []string{missing}},
		{[]string{"plan", inv, "--bogus"}, 2, []string{"plan: unknown flag --bogus"}},
		{[]string{"plan", inv, "--timeout", "soon"}, 2, []string{`plan: invalid value "soon" for --timeout`}},
		{[]string{"plan", inv, "--output", "yaml"}, 2, []string{"--output must be text or json"}},
		{[]string{"plan", inv, "--skip", "nonsense"}, 2, []string{`--skip: unknown phase "nonsense"`}},
		{[]string{"plan", inv, "--bundle", notBundle}, 2, []string{notBundle + " is not a bundle"}},
		{[]string{"plan", inv, "--add-node", "node9"}, 2, []string{"node9"}},
		{[]string{"add-node", inv}, 2, []string{"add-node: name the hosts to add"}},
		{[]string{"add-node", inv, "node9"}, 2, []string{"node9 not in the inventory"}},
		{[]string{"add-node", missing, "node1"}, 2, []string{missing}},
		{[]string{"add-node", inv, "node3", "--bundle", notBundle}, 2, []string{notBundle + " is not a bundle"}},
		{[]string{"plan", inv, "--bundle", thin}, 2, []string{"the bundle " + thin + " lacks images the addons run"}},
		{[]string{"plan", noAddons, "--bundle", thin}, 2, []string{"the bundle " + thin + " does not hold what " + noAddons + " needs", "metalk8s bundle verify -i"}},
		{[]string{"remove-node", inv}, 2, []string{"remove-node: name the hosts to remove"}},
		{[]string{"remove-node", inv, "node9"}, 2, []string{"node9 not in the inventory", "keep a host in the inventory until it is removed"}},
		{[]string{"remove-node", inv, "node1", "node2", "node3"}, 2, []string{"refused", "the last control plane"}},
		{[]string{"remove-node", inv, "node3", "--wipe-volumes", "node1"}, 2, []string{"--wipe-volumes node1: not a host being removed"}},
		{[]string{"remove-node", inv, "node3", "--unreachable", "--wipe-volumes", "node3"}, 2, []string{"--wipe-volumes node3: the host is unreachable"}},
		{[]string{"remove-node", inv, "node3"}, 2, []string{"remove-node: no bundle"}},
		{[]string{"remove-node", inv, "node3", "--drain-timeout", "soon"}, 2, []string{`invalid value "soon" for --drain-timeout`}},
		{[]string{"verify", inv}, 2, []string{"verify: the admin kubeconfig", "admin.conf", "made by metalk8s up"}},
		{[]string{"verify", inv, "--output", "yaml"}, 2, []string{"verify: --output must be text or json"}},
		{[]string{"verify", missing}, 2, []string{missing}},
		{[]string{"reset", inv}, 2, []string{"reset: deletes the cluster on every host: give --yes"}},
		{[]string{"reset", inv, "--yes", "--wipe-volumes", "node9"}, 2, []string{"--wipe-volumes node9: not a host of " + inv}},
		{[]string{"reset", missing, "--yes"}, 2, []string{missing}},
		{[]string{"plan", inv, "--add-node", "node3", "--remove-node", "node2"}, 2, []string{"--add-node and --remove-node are two runs"}},

		// inventory
		{[]string{"inventory", inv}, 2, []string{"inventory: give exactly one of --list, --host HOST, --check"}},
		{[]string{"inventory", "--list"}, 2, []string{"inventory: no inventory given"}},
		{[]string{"inventory", "--check", missing}, 2, []string{missing}},
		{[]string{"inventory", "--host", "node9", inv}, 2, []string{`inventory: no host "node9" in ` + inv}},
		{[]string{"inventory", "--list", "--bogus", inv}, 2, []string{"inventory: unknown flag --bogus"}},

		// exec
		{[]string{"exec"}, 2, []string{"exec: no inventory given"}},
		{[]string{"exec", inv}, 2, []string{"exec: no command after the inventory " + inv}},
		{[]string{"exec", "-i", inv}, 2, []string{"exec: no command: metalk8s exec hosts.ini -- COMMAND"}},
		{[]string{"exec", missing, "--", "true"}, 2, []string{missing}},
		{[]string{"exec", inv, "--limit", "nope", "--", "true"}, 2, []string{`--limit: host pattern "nope" matches no group or host of ` + inv}},
		{[]string{"exec", inv, "--forks", "0", "--", "true"}, 2, []string{"--forks must be at least 1"}},
		{[]string{"exec", inv, "--bogus", "--", "true"}, 2, []string{"exec: unknown flag --bogus"}},

		// bundle
		{[]string{"bundle", "build"}, 2, []string{"bundle build: no output directory: metalk8s bundle build -o DIR"}},
		{[]string{"bundle", "build", "-o", notBundle, "extra"}, 2, []string{"bundle build: unexpected arguments: extra"}},
		{[]string{"bundle", "build", "-o", notBundle, "--os", "plan9"}, 2, []string{"--os: ", "plan9"}},
		{[]string{"bundle", "build", "-o", notBundle, "--kube-version", "v1.0.0"}, 2, []string{"v1.0.0"}},
		{[]string{"bundle", "build", "-o", notBundle, "-i", missing}, 2, []string{missing}},
		{[]string{"bundle", "versions", "extra"}, 2, []string{"bundle versions: unexpected arguments: extra"}},
		{[]string{"bundle", "versions", "--kube-version", "v1.34.4"}, 2, []string{"v1.34.4", "supports Kubernetes"}},
		{[]string{"bundle", "versions", "--kube-version", "banana"}, 2, []string{`--kube-version "banana": want v1.MINOR.PATCH`}},
		{[]string{"bundle", "versions", "--kube-version", "1.36"}, 2, []string{`--kube-version "1.36": want v1.MINOR.PATCH`}},
		{[]string{"bundle", "verify"}, 2, []string{"bundle verify: give the bundle directory"}},
		{[]string{"bundle", "verify", notBundle}, 2, []string{"bundle verify: " + notBundle + " is not a bundle: no manifest.json"}},
		{[]string{"bundle", "verify", missing}, 2, []string{missing + " is not a bundle"}},
		{[]string{"bundle", "verify", "-i", missing, notBundle}, 2, []string{missing}},

		// etcd
		{[]string{"etcd", "status"}, 2, []string{"etcd status: no inventory given"}},
		{[]string{"etcd", "status", missing}, 2, []string{missing}},
		{[]string{"etcd", "status", inv, "--bogus"}, 2, []string{"etcd status: unknown flag --bogus"}},
		{[]string{"etcd", "snapshot", "save"}, 2, []string{"etcd snapshot save: want hosts.ini FILE"}},
		{[]string{"etcd", "snapshot", "save", inv}, 2, []string{"etcd snapshot save: want hosts.ini FILE"}},
		{[]string{"etcd", "snapshot", "save", inv, filepath.Join(missing, "snap.db")}, 2, []string{missing + " is not a directory"}},
		// the local PKI is missing: a failure, named, not members UNHEALTHY
		{[]string{"etcd", "status", inv}, 2, []string{"etcd status: missing " + filepath.Join(pki, "etcd", "ca.crt"),
			filepath.Join(pki, "etcd", "healthcheck-client.crt"), "the cluster's PKI lives in " + pki, "`metalk8s up " + inv + "`"}},
		{[]string{"etcd", "snapshot", "save", inv, filepath.Join(home, "snap.db")}, 2, []string{"etcd snapshot save: missing ", filepath.Join(pki, "etcd", "healthcheck-client.key")}},

		// -v is verbosity, before or after the command: the command runs
		{[]string{"-v", "plan"}, 2, []string{"plan: no inventory given"}},
		{[]string{"plan", "-v"}, 2, []string{"plan: no inventory given"}},
		{[]string{"--verbose", "plan", inv, "--forks", "0"}, 2, []string{"--forks must be at least 1"}},
		{[]string{"-v", "etcd", "status", inv, "-v"}, 2, []string{"etcd status: missing"}},
	} {
		code, out, errOut := metalk8s(t, c.args...)
		if code != c.code || out != "" || !regexp.MustCompile(`^metalk8s: [^\n]+\n$`).MatchString(errOut) {
			t.Errorf("%v: exit %d (want %d), want one line on stderr and nothing on stdout:\nstdout: %q\nstderr: %q", c.args, code, c.code, out, errOut)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(errOut, w) {
				t.Errorf("%v: stderr %q lacks %q", c.args, errOut, w)
			}
		}
	}
	if _, err := os.Stat(filepath.Join(notBundle, "manifest.json")); err == nil {
		t.Errorf("bundle build wrote to %s despite bad input", notBundle)
	}
}

// Help and the version exit 0, on stdout; the exit codes are documented.
func TestHelpAndVersion(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--version"}, "metalk8s version dev\n"},
		{[]string{"version"}, "metalk8s version dev\n"},
		{[]string{"--help"}, "Exit codes: 0 success, 1 failure, 2 bad usage or bad input; plan: 3 changes pending."},
		{[]string{"-v"}, "--verbose, -v"}, // alone: the help, not the version
		{[]string{"plan", "--help"}, "3 changes are pending"},
		{[]string{"exec", "-h"}, "metalk8s exec [command options] hosts.ini -- COMMAND"},
		{[]string{"etcd"}, "snapshot"},
		{[]string{"bundle", "--help"}, "verify"},
		{[]string{"help"}, "Exit codes: 0 success, 1 failure"},
		{[]string{"help", "up"}, "metalk8s up [command options] hosts.ini"},
		{[]string{"help", "etcd", "snapshot"}, "save"},
		{[]string{"help", "--help"}, "Help: metalk8s help [COMMAND...]"},
	} {
		code, out, errOut := metalk8s(t, c.args...)
		if code != 0 || errOut != "" || !strings.Contains(out, c.want) {
			t.Errorf("%v: exit %d, stderr %q, stdout lacks %q:\n%s", c.args, code, errOut, c.want, out)
		}
	}
}

// plan -v on a host that refuses connections: exit 1, each step's start
// and, for a blocked step, what it waited for; plan without changes
// pending never exits 3. (The fleet tests check 3, changes pending.)
func TestPlanVerboseUnreachable(t *testing.T) {
	isolate(t)
	inv := writeInventory(t, "[kube-master]", "node1 ansible_host=127.0.0.1 ansible_port=1",
		"[etcd:children]", "kube-master", "[kube-node:children]", "kube-master")
	code, out, errOut := metalk8s(t, "plan", "-v", inv, "--only", "preflight")
	if code != 1 || !regexp.MustCompile(`node1 +preflight/connect +started\n`).MatchString(out) ||
		!regexp.MustCompile(`node1 +preflight/facts +blocked: preflight/connect@node1 did not finish\n`).MatchString(out) ||
		!strings.Contains(errOut, "connection refused") {
		t.Errorf("plan -v: exit %d, want 1 with each step's start and why it is blocked\n%s%s", code, out, errOut)
	}
}
