package pki

import (
	"context"
	"crypto/x509"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/metalk8s/metalk8s/pkg/ssh"
	"github.com/metalk8s/metalk8s/pkg/steps"
)

// fakeHost runs commands with sh on this machine, with /etc/kubernetes
// moved under root: the real read command, on files of our making.
type fakeHost struct {
	name, root string
	down       bool
	log        []string // what a run log would see: commands only
}

func (h *fakeHost) Name() string { return h.name }
func (h *fakeHost) Run(ctx context.Context, cmd string) ([]byte, error) {
	return nil, errors.New("Run would log the output")
}
func (h *fakeHost) Put(ctx context.Context, f ssh.File) (bool, error) {
	return false, errors.New("no Put")
}
func (h *fakeHost) RunSecret(ctx context.Context, cmd string) ([]byte, error) {
	h.log = append(h.log, cmd)
	if h.down {
		return nil, ssh.ErrConnectionLost
	}
	cmd = strings.ReplaceAll(cmd, "/etc/kubernetes/", h.root+"/etc/kubernetes/")
	out, err := exec.CommandContext(ctx, "sh", "-c", cmd).Output()
	return []byte(strings.ReplaceAll(string(out), h.root+"/etc/kubernetes/", "/etc/kubernetes/")), err
}

// plainHost can only Run, which logs.
type plainHost struct{ fakeHost }

func (h *plainHost) RunSecret() {}

var testHosts = []string{"node1", "node2", "node3"}

// testPairs: the Kubernetes pairs on every host, the etcd CA likewise and
// one leaf per host (etcd's layout, pkg/etcd.RecoverPairs).
func testPairs() []Pair {
	pairs := append(KubernetesPairs(testHosts), Pair{Trusted: true, Files: [2]Source{
		{Local: "etcd/ca.crt", Node: "/etc/kubernetes/pki/etcd/ca.crt", Hosts: testHosts},
		{Local: "etcd/ca.key", Node: "/etc/kubernetes/pki/etcd/ca.key", Hosts: testHosts}}})
	for _, h := range testHosts {
		pairs = append(pairs, Pair{Files: [2]Source{
			{Local: "etcd/" + h + "/server.crt", Node: "/etc/kubernetes/pki/etcd/server.crt", Hosts: []string{h}},
			{Local: "etcd/" + h + "/server.key", Node: "/etc/kubernetes/pki/etcd/server.key", Hosts: []string{h}}}})
	}
	return pairs
}

// makePKI makes a whole local PKI in dir (artifacts/pki).
func makePKI(t *testing.T, dir string) {
	t.Helper()
	if _, err := (&Kubernetes{Dir: filepath.Join(dir, "kubernetes")}).Ensure(); err != nil {
		t.Fatal(err)
	}
	if _, err := etcdSet(dir).Ensure(); err != nil {
		t.Fatal(err)
	}
}

// etcdSet is the etcd part of makePKI's PKI.
func etcdSet(dir string) *Set {
	s := &Set{Dir: filepath.Join(dir, "etcd"), CA: CA{Name: "ca", CommonName: "etcd-ca", Label: "etcd"}}
	for _, h := range testHosts {
		s.Leaves = append(s.Leaves, Leaf{Name: h + "/server", CommonName: h, Usage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, SANs: []string{h}})
	}
	return s
}

// A plan without the local PKI (a fresh clone of the inventory) shows the
// restores, and the PKI steps after them check the PKI as restored: no new
// CA, no new certificate, nothing written.
func TestPlanAfterRestore(t *testing.T) {
	clusterPKI := filepath.Join(t.TempDir(), "pki")
	makePKI(t, clusterPKI)
	dir := filepath.Join(t.TempDir(), "artifacts", "pki")
	m := map[string]steps.Host{}
	for _, n := range testHosts {
		h := &fakeHost{name: n, root: shellSafeDir(t)}
		install(t, clusterPKI, h)
		m[n] = h
	}
	rec := RecoverStep("node1", dir, testPairs())
	rec.Deps = nil
	var planned []string
	after := &steps.Step{ID: "control-plane/pki@node1", Host: "node1", Phase: "control-plane", Deps: []string{rec.ID},
		Check: func(context.Context, steps.Host) (steps.Change, error) {
			k, err := (&Kubernetes{Dir: filepath.Join(dir, "kubernetes")}).Plan()
			if err != nil {
				return steps.NoChange, err
			}
			e, err := etcdSet(dir).Plan()
			planned = append(k, e...)
			return steps.Changes(planned...), err
		}}
	g, err := steps.NewGraph([]*steps.Step{rec, after})
	if err != nil {
		t.Fatal(err)
	}
	r := steps.Run(context.Background(), g, m, steps.Options{Transient: func(error) bool { return false }})
	if o := r.Outcomes[rec.ID]; o.Status != steps.StatusPending {
		t.Fatalf("recover: %s %v", o.Status, o.Err)
	}
	if o := r.Outcomes[after.ID]; o.Status != steps.StatusOK || o.Err != nil {
		t.Errorf("the PKI after the restore: %s %v, would change %q", o.Status, o.Err, planned)
	}
	if _, err := os.Stat(dir); err == nil {
		t.Errorf("plan wrote %s", dir)
	}
}

// install copies a local PKI to a node's root as the pairs lay it out.
func install(t *testing.T, pkiDir string, h *fakeHost) {
	t.Helper()
	for _, p := range testPairs() {
		for _, src := range p.Files {
			if !contains(src.Hosts, h.name) {
				continue
			}
			dst := filepath.Join(h.root, src.Node)
			os.MkdirAll(filepath.Dir(dst), 0o700)
			if err := os.WriteFile(dst, mustRead(t, filepath.Join(pkiDir, src.Local)), 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// runRecover runs the recover step alone, plan or up, on hosts.
func runRecover(t *testing.T, dir string, hosts []steps.Host, apply bool) *steps.Outcome {
	t.Helper()
	s := RecoverStep("node1", dir, testPairs())
	s.Deps = nil // preflight/connect is not part of this test
	g, err := steps.NewGraph([]*steps.Step{s})
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]steps.Host{}
	for _, h := range hosts {
		m[h.Name()] = h
	}
	r := steps.Run(context.Background(), g, m, steps.Options{Apply: apply, Transient: func(error) bool { return false }})
	return r.Outcomes[s.ID]
}

func TestRecover(t *testing.T) {
	clusterPKI := filepath.Join(t.TempDir(), "pki") // what the cluster was made with
	makePKI(t, clusterPKI)
	otherPKI := filepath.Join(t.TempDir(), "pki")
	makePKI(t, otherPKI)
	all := snapshot(t, clusterPKI)
	var restoreAll []string
	for _, p := range testPairs() {
		for _, src := range p.Files {
			restoreAll = append(restoreAll, "~ restore pki/"+src.Local+" from "+map[bool]string{true: src.Hosts[0], false: "node1"}[len(src.Hosts) == 1])
		}
	}

	cases := []struct {
		name string
		// nodes: which hosts hold the cluster's PKI; local: set up the local copy in dir.
		nodes   []string
		local   func(t *testing.T, dir string)
		tweak   func(t *testing.T, hosts map[string]*fakeHost)
		want    []string // Check's lines
		warn    string   // a warning containing this
		errWant []string // or an error containing these
		restore bool     // after up, the local copy equals the cluster's
	}{
		{name: "new cluster: nodes hold nothing", local: func(*testing.T, string) {}},
		{name: "new cluster, local PKI made already", local: func(t *testing.T, d string) { makePKI(t, d) }},
		{name: "in sync", nodes: testHosts, local: copyFrom(clusterPKI)},
		{name: "local lost (fresh clone)", nodes: testHosts, local: func(*testing.T, string) {}, want: restoreAll, restore: true},
		{name: "only the CA key lost", nodes: testHosts, local: func(t *testing.T, d string) {
			copyFrom(clusterPKI)(t, d)
			os.Remove(filepath.Join(d, "kubernetes", "ca.key"))
		}, want: []string{"~ restore pki/kubernetes/ca.key from node1"}, restore: true},
		{name: "local is another PKI", nodes: testHosts, local: copyFrom(otherPKI),
			errWant: []string{"pki/kubernetes/ca.crt differs from node1:/etc/kubernetes/pki/ca.crt", "pki/kubernetes/sa.key differs", "pki/etcd/ca.key differs", "delete the local files"}},
		{name: "a leaf differs: left to the renewal rules", nodes: testHosts, local: func(t *testing.T, d string) {
			copyFrom(clusterPKI)(t, d)
			for _, ext := range []string{".crt", ".key"} {
				os.WriteFile(filepath.Join(d, "etcd/node2/server"+ext), mustRead(t, filepath.Join(otherPKI, "etcd/node2/server"+ext)), 0o600)
			}
		}},
		{name: "nodes disagree", nodes: testHosts, local: func(*testing.T, string) {}, tweak: func(t *testing.T, hs map[string]*fakeHost) {
			os.WriteFile(filepath.Join(hs["node3"].root, "etc/kubernetes/pki/front-proxy-ca.crt"), mustRead(t, filepath.Join(otherPKI, "kubernetes/front-proxy-ca.crt")), 0o600)
		}, errWant: []string{"/etc/kubernetes/pki/front-proxy-ca.crt: node1, node2 hold one copy; node3 holds another"}},
		{name: "a node joined without certificates yet", nodes: []string{"node1", "node2"}, local: func(*testing.T, string) {}, want: []string{
			"~ restore pki/kubernetes/ca.crt from node1", "~ restore pki/kubernetes/ca.key from node1",
			"~ restore pki/kubernetes/front-proxy-ca.crt from node1", "~ restore pki/kubernetes/front-proxy-ca.key from node1",
			"~ restore pki/kubernetes/sa.key from node1", "~ restore pki/kubernetes/sa.pub from node1",
			"~ restore pki/etcd/ca.crt from node1", "~ restore pki/etcd/ca.key from node1",
			"~ restore pki/etcd/node1/server.crt from node1", "~ restore pki/etcd/node1/server.key from node1",
			"~ restore pki/etcd/node2/server.crt from node2", "~ restore pki/etcd/node2/server.key from node2",
		}},
		{name: "the etcd CA key is on no node and lost here", nodes: testHosts, local: func(*testing.T, string) {}, tweak: func(t *testing.T, hs map[string]*fakeHost) {
			for _, h := range hs {
				os.Remove(filepath.Join(h.root, "etc/kubernetes/pki/etcd/ca.key"))
			}
		}, errWant: []string{"pki/etcd/ca.key: missing here and on every node, which hold /etc/kubernetes/pki/etcd/ca.crt (node1, node2, node3)", "from a backup"}},
		{name: "the etcd CA key only here", nodes: testHosts, local: copyFrom(clusterPKI), tweak: func(t *testing.T, hs map[string]*fakeHost) {
			for _, h := range hs {
				os.Remove(filepath.Join(h.root, "etc/kubernetes/pki/etcd/ca.key"))
			}
		}},
		{name: "a node down, local complete", nodes: testHosts, local: copyFrom(clusterPKI),
			tweak: func(t *testing.T, hs map[string]*fakeHost) { hs["node3"].down = true }, warn: "the PKI on node3 could not be read"},
		{name: "a node down, local lost", nodes: testHosts, local: func(*testing.T, string) {},
			tweak:   func(t *testing.T, hs map[string]*fakeHost) { hs["node3"].down = true },
			errWant: []string{"incomplete and node3 could not be read", "connection lost"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "artifacts", "pki")
			c.local(t, dir)
			hosts := map[string]*fakeHost{}
			var list []steps.Host
			for _, n := range testHosts {
				hosts[n] = &fakeHost{name: n, root: shellSafeDir(t)}
				list = append(list, hosts[n])
				if contains(c.nodes, n) {
					install(t, clusterPKI, hosts[n])
				}
			}
			if c.tweak != nil {
				c.tweak(t, hosts)
			}
			before := snapshot(t, filepath.Dir(dir))
			o := runRecover(t, dir, list, false)
			if !reflect.DeepEqual(before, snapshot(t, filepath.Dir(dir))) {
				t.Fatal("plan wrote files")
			}
			if c.errWant != nil {
				if o.Status != steps.StatusFailed {
					t.Fatalf("status %s, diff %q", o.Status, o.Change.Diff)
				}
				for _, w := range c.errWant {
					if !strings.Contains(o.Err.Error(), w) {
						t.Errorf("error lacks %q:\n%v", w, o.Err)
					}
				}
				if o = runRecover(t, dir, list, true); o.Status != steps.StatusFailed || !reflect.DeepEqual(before, snapshot(t, filepath.Dir(dir))) {
					t.Fatalf("up: %s, or files changed", o.Status)
				}
				return
			}
			if o.Err != nil || !reflect.DeepEqual(o.Change.Diff, c.want) {
				t.Fatalf("plan: %v\n got %q\nwant %q", o.Err, o.Change.Diff, c.want)
			}
			if c.warn != "" && (len(o.Change.Warnings) != 1 || !strings.Contains(o.Change.Warnings[0], c.warn)) {
				t.Errorf("warnings %q", o.Change.Warnings)
			}
			o = runRecover(t, dir, list, true)
			if o.Err != nil {
				t.Fatalf("up: %v", o.Err)
			}
			if c.want == nil && !reflect.DeepEqual(before, snapshot(t, filepath.Dir(dir))) {
				t.Fatal("up with nothing to do wrote files")
			}
			if c.restore && !reflect.DeepEqual(snapshot(t, dir), all) {
				t.Fatal("the local copy is not the cluster's after up")
			}
			if c.want != nil {
				checkModes(t, dir)
			}
		})
	}
}

// shellSafeDir is a temporary directory whose name needs no quoting (the
// fake host splices it into commands); t.TempDir's holds the test's name.
func shellSafeDir(t *testing.T) string {
	d, err := os.MkdirTemp("", "node")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

func copyFrom(src string) func(t *testing.T, dir string) {
	return func(t *testing.T, dir string) {
		for name, data := range snapshot(t, src) {
			if err := WriteFiles(File{filepath.Join(dir, filepath.FromSlash(name)), []byte(data)}); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func checkModes(t *testing.T, dir string) {
	t.Helper()
	filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		want := os.FileMode(0o600)
		if p == dir {
			return nil // artifacts/pki holds only private directories
		}
		if info.IsDir() {
			want = 0o700
		}
		if info.Mode().Perm() != want {
			t.Errorf("%s: mode %o, want %o", p, info.Mode().Perm(), want)
		}
		return nil
	})
}

func TestRecoverRefusesLoggingHosts(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pki")
	h := &plainHost{fakeHost{name: "node1", root: t.TempDir()}}
	o := runRecover(t, dir, []steps.Host{h, &fakeHost{name: "node2", root: t.TempDir()}, &fakeHost{name: "node3", root: t.TempDir()}}, false)
	if o.Status != steps.StatusFailed || !strings.Contains(o.Err.Error(), "cannot read keys without logging them") {
		t.Fatalf("%s %v", o.Status, o.Err)
	}
}

// Bad framing of what a host sent is reported without quoting it.
func TestParseReadQuotesNothing(t *testing.T) {
	secret := "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg\n-----END PRIVATE KEY-----\n"
	if _, err := parseRead([]byte("12 /etc/kubernetes/pki/ca.key\n--\n"+secret), []string{"/etc/kubernetes/pki/ca.key"}); err == nil || strings.Contains(err.Error(), "MIGHAgEA") {
		t.Fatalf("parseRead of bad framing: %v", err)
	}
}

func TestReadCommandRoundTrip(t *testing.T) {
	root := shellSafeDir(t)
	h := &fakeHost{name: "node1", root: root}
	files := map[string]string{
		"/etc/kubernetes/pki/a b.crt": "with a space\n",
		"/etc/kubernetes/pki/empty":   "",
		"/etc/kubernetes/pki/nonl":    "no newline at the end",
		"/etc/kubernetes/pki/lines":   "1 /etc/kubernetes/pki/x\n\n\n",
	}
	var paths []string
	for p, data := range files {
		os.MkdirAll(filepath.Dir(filepath.Join(root, p)), 0o700)
		os.WriteFile(filepath.Join(root, p), []byte(data), 0o600)
		paths = append(paths, p)
	}
	paths = append(paths, "/etc/kubernetes/pki/missing")
	out, err := h.RunSecret(context.Background(), readCommand(paths))
	if err != nil {
		t.Fatal(err)
	}
	got, err := parseRead(out, paths)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(files) {
		t.Fatalf("%d files, want %d", len(got), len(files))
	}
	for p, data := range files {
		if string(got[p]) != data {
			t.Errorf("%s: %q, want %q", p, got[p], data)
		}
	}
}
