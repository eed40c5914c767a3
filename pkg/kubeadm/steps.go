// Package kubeadm brings up the Kubernetes control plane and the workers
// with kubeadm: its configuration built from kubeadm's own types, the
// Kubernetes CAs copied from this machine, one control plane at a time,
// workers joined with short-lived bootstrap tokens, and a path to the API
// from every node that survives losing any one control plane.
package kubeadm

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/metalk8s/metalk8s/pkg/inventory"
	"github.com/metalk8s/metalk8s/pkg/kube"
	"github.com/metalk8s/metalk8s/pkg/pki"
	"github.com/metalk8s/metalk8s/pkg/ssh"
	"github.com/metalk8s/metalk8s/pkg/steps"
)

// Units whose journal explains a failed Kubernetes step.
var units = []string{"kubelet", "containerd"}

// diag explains a failed Kubernetes step beyond the units' journals: every
// container the kubelet ran, and the last lines of each that exited (a
// static pod that crash-loops leaves its exited attempts).
var diag = map[string]string{
	"crictl-ps.txt":   "crictl ps -a 2>&1",
	"crictl-pods.txt": "crictl pods 2>&1",
	"container-logs.txt": `for id in $(crictl ps -a -q --state exited 2>/dev/null); do
  echo "=== $(crictl ps -a --id "$id" 2>/dev/null | tail -n +2)"; crictl logs --tail 60 "$id" 2>&1
done`,
}

// graph holds what the steps of one cluster share.
type graph struct {
	cl   *inventory.Cluster
	p    *Params
	art  string // <inventory dir>/artifacts
	kpki *pki.Kubernetes
	st   *runState
	cps  []string // control-plane hosts, in inventory order
	// prepared: per host, the IDs of the steps that prepare it
	prepared map[string][]string
}

// Steps returns the Kubernetes steps of a cluster whose nodes get their
// binaries and images from a bundle: the kubelet unit (prepare), the CA
// files, each node's state, kubeadm init on the first control plane and
// join on the others one at a time, artifacts/admin.conf and the API's
// readiness (control-plane); the workers' joins and API proxies, and the
// endpoint name in every node's /etc/hosts (workers). art is the
// inventory's artifacts directory; p comes from ParamsFrom; prepared
// lists, per host, the steps that prepare it (packages, kernel settings,
// container runtime, images), which kubeadm must come after.
func Steps(cl *inventory.Cluster, art string, p *Params, prepared map[string][]string) []*steps.Step {
	g := &graph{cl: cl, p: p, art: art, st: newRunState(), prepared: prepared,
		kpki: &pki.Kubernetes{Dir: filepath.Join(art, "pki", "kubernetes"), Algorithm: p.EncryptionAlgorithm}}
	for _, n := range cl.ControlPlane {
		g.cps = append(g.cps, n.Name)
	}
	out := kubeletSteps(cl, p)
	out = append(out, g.pkiSteps()...)
	for _, n := range kubeNodes(cl) {
		out = append(out, g.stateStep(n))
	}
	out = append(out, g.joinSteps()...)
	out = append(out, g.endpointSteps()...)
	return out
}

func phaseOf(n *inventory.Node) string {
	if n.ControlPlane {
		return "control-plane"
	}
	return "workers"
}

// Step IDs other packages depend on.
const (
	// JoinStepName joins (or inits) one node: "control-plane/kubeadm" or
	// "workers/kubeadm" with the node's name.
	joinStepName = "/kubeadm"
)

// JoinStepID is the ID of the step that brings a node into the cluster.
func JoinStepID(n *inventory.Node) string { return steps.ID(phaseOf(n)+joinStepName, n.Name) }

// pkiSteps make the Kubernetes CAs on this machine and copy them to every
// control plane, with the etcd client files kubeadm's external etcd needs.
func (g *graph) pkiSteps() []*steps.Step {
	first := g.cps[0]
	pkiID := steps.ID("control-plane/pki", first)
	// The nodes' CAs win over a missing local copy: recovered first.
	deps := []string{steps.ID("preflight/facts", first), pki.RecoverStepID(first)}
	out := []*steps.Step{{ID: pkiID, Host: first, Phase: "control-plane", Deps: deps,
		Check: func(ctx context.Context, h steps.Host) (steps.Change, error) {
			lines, err := g.kpki.Plan()
			return pki.Changes(lines), err
		},
		Apply: func(ctx context.Context, h steps.Host) error {
			_, err := g.kpki.Ensure()
			return err
		}}}
	for _, n := range g.cl.ControlPlane {
		host := n.Name
		out = append(out, &steps.Step{ID: steps.ID("control-plane/certs", host), Host: host, Phase: "control-plane",
			Deps: []string{pkiID, steps.ID("etcd/pki", g.cl.Etcd[0].Name), steps.ID("prepare/state-dir", host)},
			Check: func(ctx context.Context, h steps.Host) (steps.Change, error) {
				files, err := g.caFiles()
				if err != nil {
					return steps.Changes("+ install the Kubernetes CAs in /etc/kubernetes/pki"), nil
				}
				return steps.FilesChange(ctx, h, files)
			},
			Apply: func(ctx context.Context, h steps.Host) error {
				files, err := g.caFiles()
				if err != nil {
					return err
				}
				_, err = steps.PutFiles(ctx, h, files)
				return err
			}})
	}
	return out
}

// caFiles are the files a control plane needs before init or join: the
// cluster and front-proxy CAs and the service-account key (from
// pki.Kubernetes), the etcd CA and the apiserver's etcd client pair.
func (g *graph) caFiles() ([]ssh.File, error) {
	m, err := g.kpki.Files()
	if err != nil {
		return nil, err
	}
	var files []ssh.File
	for rel, data := range m {
		files = append(files, ssh.File{Path: "/etc/kubernetes/pki/" + rel, Data: data, Mode: keyMode(rel)})
	}
	etcdDir := filepath.Join(g.art, "pki", "etcd")
	for node, local := range map[string]string{
		"etcd/ca.crt":               "ca.crt",
		"apiserver-etcd-client.crt": "apiserver-etcd-client.crt",
		"apiserver-etcd-client.key": "apiserver-etcd-client.key",
	} {
		data, err := pki.ReadFile(filepath.Join(etcdDir, local))
		if err != nil {
			return nil, fmt.Errorf("etcd PKI: %w", err)
		}
		files = append(files, ssh.File{Path: "/etc/kubernetes/pki/" + node, Data: data, Mode: keyMode(node)})
	}
	return files, nil
}

func keyMode(name string) os.FileMode {
	if strings.HasSuffix(name, ".key") {
		return 0o600
	}
	return 0o644
}

// stateStep reads whether a node is joined, partial or fresh.
func (g *graph) stateStep(n *inventory.Node) *steps.Step {
	host, cp := n.Name, n.ControlPlane
	return &steps.Step{ID: steps.ID(phaseOf(n)+"/node-state", host), Host: host, Phase: phaseOf(n),
		Deps: []string{steps.ID("prepare/state-dir", host)},
		Check: func(ctx context.Context, h steps.Host) (steps.Change, error) {
			st, f, err := readState(ctx, h, cp)
			if err != nil {
				return steps.NoChange, fmt.Errorf("%s: %w", host, err)
			}
			g.st.set(host, st, f.KubeletActive)
			return steps.NoChange, nil
		}}
}

// client returns the run's API client, through the control planes' SSH
// connections. Without a local admin.conf (a fresh clone of the inventory
// while the first control plane rejoins), it is first read from a joined
// control plane; the admin-conf step sets its server later.
func (g *graph) client(ctx context.Context) (*kube.Client, error) {
	path := kube.AdminConfPath(g.art)
	if _, err := os.Stat(path); os.IsNotExist(err) {
		joined := g.st.joinedOf(g.cps)
		if len(joined) == 0 {
			return nil, fmt.Errorf("%s is missing and no control plane is joined", path)
		}
		h := steps.HostFrom(ctx, joined[0])
		if h == nil {
			return nil, fmt.Errorf("no connection to %s", joined[0])
		}
		conf, err := g.adminConf(ctx, h)
		if err != nil {
			return nil, err
		}
		if err := os.MkdirAll(g.art, 0o700); err != nil {
			return nil, err
		}
		if err := steps.WriteFileAtomic(path, conf, 0o600); err != nil {
			return nil, err
		}
	}
	return kube.FromRun(ctx, path, g.cps)
}
