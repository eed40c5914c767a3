// Package lab holds the end-to-end test of metalk8s on the VM lab: real
// Debian 12 VMs under QEMU, booted by lab.sh (next to this file).
//
// TestLab builds metalk8s, boots a lab of 3 nodes of its own (name
// mk8se2e, LAB_DIR .lab/e2e, SSH forwards 127.0.0.1:2321-2323, so a lab that
// a developer has up is left alone), runs `metalk8s exec`, builds the
// offline bundle (test/lab/bundle.sh), and runs every scenario on that one
// lab, in turn. First the node stack, with the Kubernetes phases skipped,
// while no cluster loads the emulated CPUs: `metalk8s up --bundle` (twice:
// the second changes and uploads nothing, and plan then exits 0), the
// installed packages, binaries and images, the etcd cluster (etcdctl,
// status, a snapshot read by etcdutl, a stopped member restarted alone, a
// removed one joined again) and the storage (VGs, LVs, mounts; a drive
// holding a filesystem refused, then forced; a VG extended). Then, with
// METALK8S_E2E_KUBE=1, the Kubernetes phases: up (and again: no change),
// the cluster (two control planes and a worker behind its apiserver
// proxy: nodes Ready, system pods, IPVS, a Service across nodes, DNS, a
// NetworkPolicy, a local-lvm claim; kube_test.go), the PKI recovered from
// the nodes after the local copy is deleted, node1 powered off and back.
// Last it takes the lab down and checks that nothing of it is left.
//
// It needs root and minutes: it is skipped with -short and when
// METALK8S_E2E=0, and as non-root (a failure under CI=true). The image cache (.cache/lab) is shared with
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
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/metalk8s/metalk8s/internal/testpeer"
	"github.com/metalk8s/metalk8s/pkg/etcd"
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
	// kubectlBin is the bundle's kubectl, run on this machine.
	kubectlBin string
	// helmBin is the bundle's helm CLI, run on this machine.
	helmBin string
	// kube: the Kubernetes phases run and are checked
	// (METALK8S_E2E_KUBE=1); else every up and plan skips them.
	kube bool
	// skipKube: up and plan skip the Kubernetes phases. Set for the
	// node-stack scenarios (etcd, storage), which run first on a lab with
	// no cluster to load its emulated CPUs; cleared for the Kubernetes
	// ones when kube.
	skipKube bool
}

// kubePhases are what METALK8S_E2E_KUBE turns on.
const kubePhases = "control-plane,workers,volumes,addons"

func TestLab(t *testing.T) {
	testpeer.OptOut(t, "the VM lab takes minutes", true)
	testpeer.Root(t, "the VM lab: QEMU taps, network namespaces, mmdebstrap")
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
	l.kube = os.Getenv("METALK8S_E2E_KUBE") == "1"
	l.skipKube = true
	if !l.kube {
		t.Logf("the Kubernetes phases (%s) are skipped: METALK8S_E2E_KUBE=1 (make e2e-kube) runs and checks them", kubePhases)
	}

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
		if os.Getenv("METALK8S_LAB_KEEP") == "1" {
			t.Logf("METALK8S_LAB_KEEP=1: the lab stays up (LAB_DIR=%s LAB_NAME=%s test/lab/lab.sh down)", l.dir, labName)
			return
		}
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
	cmd.Env = append(os.Environ(), "LAB_INVENTORY="+l.inv) // its addon values: which chart images
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	bout, err := cmd.Output()
	t.Logf("bundle.sh: %v\n%s", since(t0), lastLines(stderr.String(), 30))
	if err != nil {
		t.Fatalf("bundle.sh: %v", err)
	}
	bundleDir := strings.TrimSpace(lastLines(string(bout), 1))
	m := readManifest(t, bundleDir)
	for _, f := range m.Files {
		switch f.Name {
		case "kubectl":
			l.kubectlBin = filepath.Join(bundleDir, f.Path)
		case "helm":
			l.helmBin = filepath.Join(bundleDir, f.Path)
		}
	}
	if l.kubectlBin == "" || l.helmBin == "" {
		t.Fatalf("the bundle lacks kubectl (%q) or helm (%q)", l.kubectlBin, l.helmBin)
	}

	t.Run("up", func(t *testing.T) {
		t0 := time.Now()
		out := l.metalk8s(t, 40*time.Minute, "up", l.inv, "--known-hosts", l.known, "--bundle", bundleDir)
		t.Logf("metalk8s up --bundle (1st): %v\n%s", since(t0), out)

		// Every node has the packages, binaries and images, from the bundle.
		var images []string
		for _, im := range m.Images {
			images = append(images, im.Name)
		}
		out = l.metalk8s(t, 5*time.Minute, "exec", "-i", l.inv, "--known-hosts", l.known, "--",
			"dpkg-query -W -f='${Package} ${Status}\\n' lvm2 ipvsadm conntrack socat ebtables ipset | grep -c ' install ok installed$';"+
				" kubeadm version -o short; runc --version | head -1; systemctl is-active containerd;"+
				" for i in "+strings.Join(images, " ")+"; do crictl inspecti -q $i >/dev/null 2>&1 || echo missing image $i; done")
		t.Logf("installed:\n%s", out)
		want := regexp.MustCompile(`(?m)^== node[0-9]+: ok\n6\n` + regexp.QuoteMeta(m.Versions.Kube) +
			`\nrunc version ` + regexp.QuoteMeta(strings.TrimPrefix(m.Versions.Runc, "v")) + `\nactive$`)
		if n := len(want.FindAllString(out, -1)); n != nodes || strings.Contains(out, "missing image") || len(images) < 9 {
			t.Errorf("%d nodes of %d have the 6 packages, kubeadm %s, runc %s, containerd running and the bundle's %d images",
				n, nodes, m.Versions.Kube, m.Versions.Runc, len(images))
		}

		l.checkNoOp(t, bundleDir)
	})

	t.Run("etcd", func(t *testing.T) {
		if m := os.Getenv("LAB_ETCD_MEMBERS"); m != "" && m != strconv.Itoa(nodes) {
			t.Skipf("LAB_ETCD_MEMBERS=%s (make e2e-kube-light): these checks want a member on each of the %d nodes (make test runs them)", m, nodes)
		}
		run := func(limit, cmd string) string { return l.exec(t, limit, cmd) }
		// etcdctl itself, with the healthcheck client certificate.
		etcdctl := "etcdctl --endpoints https://127.0.0.1:2379 --cacert /etc/kubernetes/pki/etcd/ca.crt" +
			" --cert /etc/kubernetes/pki/etcd/healthcheck-client.crt --key /etc/kubernetes/pki/etcd/healthcheck-client.key"
		out := run("node1", etcdctl+" endpoint health --cluster 2>&1")
		t.Logf("etcdctl endpoint health --cluster:\n%s", out)
		if n := strings.Count(out, " is healthy"); n != nodes {
			t.Errorf("%d healthy members, want %d", n, nodes)
		}
		out = l.metalk8s(t, 2*time.Minute, "etcd", "status", l.inv, "--known-hosts", l.known)
		if strings.Count(out, " healthy") != nodes || !strings.Contains(out, "(leader)") || !strings.Contains(out, "\nmembers: node1, node2, node3\n") {
			t.Errorf("metalk8s etcd status:\n%s", out)
		}

		// Its metrics, as Prometheus scrapes them: node2's member from
		// node1, over plain HTTP on its address, without a certificate.
		hosts, err := os.ReadFile(l.inv)
		if err != nil {
			t.Fatal(err)
		}
		addr := regexp.MustCompile(`(?m)^node2 .*\bip=(\S+)`).FindStringSubmatch(string(hosts))
		if addr == nil {
			t.Fatalf("no ip= for node2 in %s", l.inv)
		}
		fams, err := l.scrapeFrom("node1", addr[1], etcd.MetricsPort, "/metrics")
		if err != nil {
			t.Errorf("node2's etcd metrics from node1: %v", err)
		} else if f := fams["etcd_server_has_leader"]; f == nil || f.GetMetric()[0].GetGauge().GetValue() != 1 {
			t.Errorf("node2's etcd metrics: etcd_server_has_leader %v, want 1", f)
		}
		if _, err := l.scrapeFrom("node1", addr[1], etcd.MetricsPort, "/v3/kv/range"); err == nil {
			t.Error("node2's etcd metrics listener answers /v3/kv/range: it must serve only metrics and health")
		}

		// A snapshot, opened by the real etcdutl from the bundle's etcd release.
		snap := filepath.Join(t.TempDir(), "etcd.db")
		out = l.metalk8s(t, 5*time.Minute, "etcd", "snapshot", "save", l.inv, snap, "--known-hosts", l.known)
		t.Log(out)
		if fi, err := os.Stat(snap); err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("snapshot file: %v %v", fi, err)
		}
		tools := t.TempDir()
		tars, _ := filepath.Glob(filepath.Join(bundleDir, "archives", "etcd-*-linux-amd64.tar.gz"))
		if len(tars) != 1 {
			t.Fatalf("etcd release in the bundle: %v", tars)
		}
		l.run(time.Minute, "tar", "-xzf", tars[0], "-C", tools, "--strip-components=1", "--wildcards", "*/etcdutl")
		st, err := exec.Command(filepath.Join(tools, "etcdutl"), "snapshot", "status", snap, "-w", "json").CombinedOutput()
		t.Logf("etcdutl snapshot status: %s", st)
		if err != nil || !strings.Contains(string(st), `"totalKey"`) {
			t.Errorf("etcdutl snapshot status: %v", err)
		}

		// One member stopped: up starts it and leaves the others running.
		since := func() string {
			return run("", "systemctl show -p ActiveEnterTimestampMonotonic --value etcd")
		}
		before := since()
		run("node2", "systemctl stop etcd")
		out = l.metalk8s(t, 10*time.Minute, "up", l.inv, "--known-hosts", l.known, "--bundle", bundleDir)
		t.Logf("up after stopping etcd on node2:\n%s", out)
		changed := regexp.MustCompile(`(?m)^\S+ (node\d+) +(\S+) +changed`).FindAllStringSubmatch(out, -1)
		for _, m := range changed {
			if m[2] == "etcd/member" && m[1] != "node2" {
				t.Errorf("etcd/member changed on %s", m[1])
			}
		}
		if !regexp.MustCompile(`(?m)^\S+ node2 +etcd/member +changed`).MatchString(out) {
			t.Errorf("etcd/member@node2 not changed")
		}
		after := since()
		for _, h := range []string{"node1", "node3"} {
			b := regexp.MustCompile(`== ` + h + `: ok\n(\d+)`).FindStringSubmatch(before)
			a := regexp.MustCompile(`== ` + h + `: ok\n(\d+)`).FindStringSubmatch(after)
			if b == nil || a == nil || a[1] != b[1] {
				t.Errorf("etcd on %s restarted (%v -> %v)", h, b, a)
			}
		}
		out = run("node2", "systemctl is-active etcd")
		if !strings.Contains(out, "active") {
			t.Errorf("etcd on node2 not running: %s", out)
		}

		// node3 removed from the cluster and wiped: up adds it back with
		// MemberAdd and starts it as a member of the existing cluster.
		// etcd refuses a removal that would leave fewer members than a
		// quorum connected for 5 s (its strict reconfiguration check), and
		// node2's member was started again a moment ago: retry.
		remove := etcdctl + " member remove $(" + etcdctl + " member list | awk -F', ' '$3 == \"node3\" {print $1}')"
		eventually(t, 2*time.Minute, "node3 removed from etcd", func() error {
			out, err := l.metalk8sErr(5*time.Minute, "exec", "-i", l.inv, "--known-hosts", l.known, "--limit", "node1", "--", remove)
			if err != nil {
				return fmt.Errorf("%v: %s", err, out)
			}
			return nil
		})
		run("node3", "systemctl stop etcd && rm -rf /var/lib/etcd /etc/etcd/initial.env")
		out = l.metalk8s(t, 10*time.Minute, "up", l.inv, "--known-hosts", l.known, "--bundle", bundleDir)
		t.Logf("up after removing node3 from etcd:\n%s", out)
		if !strings.Contains(out, "+ join the existing etcd cluster") {
			t.Errorf("node3 did not join the existing cluster")
		}
		out = run("node1", etcdctl+" member list; "+etcdctl+" endpoint health --cluster 2>&1")
		t.Logf("after the join:\n%s", out)
		if strings.Count(out, ", started, node") != nodes || strings.Count(out, " is healthy") != nodes {
			t.Errorf("want %d started and healthy members", nodes)
		}
	})

	t.Run("storage", func(t *testing.T) {
		// up built vg_metalk8s on /dev/vdb of every worker, with MetalK8s's
		// three volumes mounted by UUID, and their PersistentVolumes.
		exec := func(limit, cmd string) string { return l.exec(t, limit, cmd) }
		out := exec("", "pvs --noheadings -o pv_name,vg_name | awk '{print $1, $2}'; lvs --noheadings -o lv_name,lv_size --units g vg_metalk8s | awk '{print $1, $2}';"+
			" findmnt -rn -o TARGET | grep -c '^/mnt/vg_metalk8s/'; grep -c '^UUID=.* /mnt/vg_metalk8s/' /etc/fstab;"+
			" lsmod | grep -c '^ip_vs '; sysctl -n net.ipv4.ip_forward net.bridge.bridge-nf-call-iptables; swapon --noheadings | wc -l")
		t.Logf("storage and system after up:\n%s", out)
		want := regexp.MustCompile(`(?m)^== node[0-9]+: ok\n/dev/vdb vg_metalk8s\nmetalk8s_lv01 52\.00g\nmetalk8s_lv02 5\.00g\nmetalk8s_lv03 11\.00g\n3\n3\n1\n1\n1\n0$`)
		if n := len(want.FindAllString(out, -1)); n != nodes {
			t.Fatalf("%d nodes of %d have vg_metalk8s on /dev/vdb with metalk8s_lv01-03 mounted, in fstab, ip_vs loaded, forwarding on and no swap", n, nodes)
		}
		pv, err := os.ReadFile(filepath.Join(filepath.Dir(l.inv), "artifacts/storage/node1-pv.yaml"))
		if err != nil || strings.Count(string(pv), "kind: PersistentVolume\n") != 3 || !strings.Contains(string(pv), "path: /mnt/vg_metalk8s/") {
			t.Errorf("node1's PersistentVolumes: %v\n%s", err, pv)
		}

		// A filesystem on node1's /dev/vdc, then /dev/vdc added to the VG of
		// every node: plan and up refuse node1's drive, extend the others.
		exec("node1", "mkfs.ext4 -q -F /dev/vdc && blkid -p /dev/vdc")
		hv := filepath.Join(filepath.Dir(l.inv), "host_vars")
		os.MkdirAll(hv, 0o755)
		t.Cleanup(func() { os.RemoveAll(hv) })
		for i := 1; i <= nodes; i++ {
			os.WriteFile(filepath.Join(hv, fmt.Sprintf("node%d.yml", i)), []byte("metalk8s_lvm_drives_vg_metalk8s: ['/dev/vdb', '/dev/vdc']\n"), 0o644)
		}
		out, err = l.metalk8sErr(5*time.Minute, "plan", l.inv, "--known-hosts", l.known, "--bundle", bundleDir)
		t.Logf("plan with /dev/vdc:\n%s", out)
		if code := exitCode(err); code != 1 || !strings.Contains(out, "drive /dev/vdc holds a ext4 filesystem") || !strings.Contains(out, "~ vgextend vg_metalk8s /dev/vdc") {
			t.Errorf("plan: exit %d, want 1 with node1's /dev/vdc refused and a vgextend for the others", code)
		}
		out, err = l.metalk8sErr(10*time.Minute, "up", l.inv, "--known-hosts", l.known, "--bundle", bundleDir)
		t.Logf("up with /dev/vdc:\n%s", out)
		if exitCode(err) != 1 {
			t.Errorf("up with a drive holding a filesystem: exit %d, want 1", exitCode(err))
		}
		out = exec("", "pvs --noheadings -o pv_name,vg_name | awk '{print $1, $2}' | sort; blkid -p -s TYPE -o value /dev/vdc")
		t.Logf("after up:\n%s", out)
		if !strings.Contains(out, "== node1: ok\n/dev/vdb vg_metalk8s\next4\n") ||
			strings.Count(out, "/dev/vdb vg_metalk8s\n/dev/vdc vg_metalk8s\nLVM2_member\n") != nodes-1 {
			t.Errorf("want node1 untouched (vdc still ext4) and the others extended")
		}

		// Forced in the inventory: wiped and added.
		os.WriteFile(filepath.Join(hv, "node1.yml"), []byte("metalk8s_lvm_drives_vg_metalk8s: ['/dev/vdb', '/dev/vdc']\nmetalk8s_lvm_force_drives: ['/dev/vdc']\n"), 0o644)
		// A wipe: refused without a terminal unless --yes.
		out, err = l.metalk8sErr(5*time.Minute, "up", l.inv, "--known-hosts", l.known, "--bundle", bundleDir)
		if code := exitCode(err); code != 2 || !strings.Contains(out, "node1 storage/vg-vg_metalk8s: wipe /dev/vdc") || !strings.Contains(out, "--yes") {
			t.Errorf("up with a forced wipe, no --yes: exit %d, want 2 naming the wipe\n%s", code, out)
		}
		out = l.metalk8s(t, 10*time.Minute, "up", l.inv, "--known-hosts", l.known, "--bundle", bundleDir, "--yes")
		t.Logf("up with /dev/vdc forced on node1:\n%s", out)
		out = l.metalk8s(t, 10*time.Minute, "up", l.inv, "--known-hosts", l.known, "--bundle", bundleDir)
		if !strings.Contains(out, " 0 steps changed") {
			t.Errorf("up after the forced extend changed something:\n%s", out)
		}
		out = exec("node1", "pvs --noheadings -o pv_name,vg_name | awk '{print $1, $2}' | sort")
		if !strings.Contains(out, "/dev/vdb vg_metalk8s\n/dev/vdc vg_metalk8s\n") {
			t.Errorf("node1 not extended after forcing /dev/vdc:\n%s", out)
		}
	})

	t.Run("node-exporter", func(t *testing.T) { l.testNodeExporter(t, m, bundleDir) })

	// The Kubernetes phases, on the lab the scenarios above leave.
	l.skipKube = !l.kube
	t.Run("up-kubernetes", func(t *testing.T) {
		l.needKube(t)
		t0 := time.Now()
		out := l.metalk8s(t, 50*time.Minute, "up", l.inv, "--known-hosts", l.known, "--bundle", bundleDir)
		t.Logf("metalk8s up --bundle with the Kubernetes phases: %v\n%s", since(t0), out)
		l.checkNoOp(t, bundleDir)
	})
	t.Run("kubernetes", func(t *testing.T) {
		l.needKube(t)
		l.testKubernetes(t, m)
	})
	t.Run("addons", func(t *testing.T) {
		l.needKube(t)
		l.testAddons(t)
	})
	t.Run("ingress", func(t *testing.T) {
		l.needKube(t)
		l.testIngress(t)
	})
	t.Run("addon-changes", func(t *testing.T) {
		l.needKube(t)
		l.testAddonChanges(t, bundleDir)
	})
	t.Run("pki-recovery", func(t *testing.T) {
		l.needKube(t)
		l.testPKIRecovery(t, bundleDir)
	})
	t.Run("power-off", func(t *testing.T) {
		l.needKube(t)
		l.testPowerOff(t, bundleDir)
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

// checkNoOp runs up again on a lab up has just built: it changes nothing
// and uploads nothing but its journal, and plan then exits 0.
func (l *lab) checkNoOp(t *testing.T, bundleDir string) {
	t.Helper()
	t1 := time.Now()
	out := l.metalk8s(t, 20*time.Minute, "up", l.inv, "--known-hosts", l.known, "--bundle", bundleDir)
	t.Logf("metalk8s up --bundle (2nd): %v\n%s", since(t1), out)
	if !strings.Contains(out, " 0 steps changed") {
		t.Errorf("the second up changed something")
	}
	t2 := time.Now()
	out, err := l.metalk8sErr(10*time.Minute, "plan", l.inv, "--known-hosts", l.known, "--bundle", bundleDir)
	t.Logf("plan on the healthy cluster: %v, exit %d\n%s", since(t2), exitCode(err), out)
	if exitCode(err) != 0 {
		t.Errorf("plan on the healthy cluster: exit %d, want 0", exitCode(err))
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
	if l.skipKube && len(args) > 0 && (args[0] == "up" || args[0] == "plan") {
		args = append(append([]string{}, args...), "--skip", kubePhases)
	}
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

// exec runs a shell command with `metalk8s exec` on the hosts of limit
// (all when empty) and fails the test if any host fails.
func (l *lab) exec(t *testing.T, limit, cmd string) string {
	t.Helper()
	args := []string{"exec", "-i", l.inv, "--known-hosts", l.known}
	if limit != "" {
		args = append(args, "--limit", limit)
	}
	return l.metalk8s(t, 5*time.Minute, append(args, "--", cmd)...)
}

// needKube skips a subtest of the Kubernetes phases when they are off.
func (l *lab) needKube(t *testing.T) {
	t.Helper()
	if !l.kube {
		t.Skip("METALK8S_E2E_KUBE=1 runs the Kubernetes phases and this check (make e2e-kube)")
	}
}

// exitCode is a command's exit status (-1 when it did not run).
func exitCode(err error) int {
	if err == nil {
		return 0
	}
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	return -1
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
