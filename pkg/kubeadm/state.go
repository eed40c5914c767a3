package kubeadm

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/metalk8s/metalk8s/pkg/steps"
)

// NodeState is what read-only checks find of a node's kubeadm install.
type NodeState int

const (
	// Fresh: nothing of kubeadm's on the node.
	Fresh NodeState = iota
	// Partial: files of an init or join that did not finish.
	Partial
	// Joined: the node is part of a cluster, as its role wants.
	Joined
)

func (s NodeState) String() string {
	return [...]string{"fresh", "partial", "joined"}[s]
}

// Files kubeadm leaves on a node, in the order init and join write them:
// control-plane certificates and static pods first, then the kubelet's
// configuration, then (once TLS bootstrap is done) its kubeconfig.
var stateFiles = []string{
	"/etc/kubernetes/pki/apiserver.crt",
	"/etc/kubernetes/manifests/kube-apiserver.yaml",
	"/etc/kubernetes/bootstrap-kubelet.conf",
	"/var/lib/kubelet/config.yaml",
	"/etc/kubernetes/kubelet.conf",
	"/etc/kubernetes/admin.conf",
}

// JoinedMarker is written once kubeadm init or join has exited 0; it holds
// the role the node joined as ("control-plane" or "worker"). kubeadm
// writes the kubelet's files long before it is done (init's later phases
// upload the configuration, make the join RBAC and cluster-info), so the
// files alone cannot tell a finished join from one that failed late.
const JoinedMarker = "/etc/kubernetes/metalk8s/joined"

const stateCommand = `for f in /etc/kubernetes/pki/apiserver.crt /etc/kubernetes/manifests/kube-apiserver.yaml /etc/kubernetes/bootstrap-kubelet.conf /var/lib/kubelet/config.yaml /etc/kubernetes/kubelet.conf /etc/kubernetes/admin.conf; do test -e "$f" && echo "$f"; done; echo "role=$(cat ` + JoinedMarker + ` 2>/dev/null)"; echo "kubelet=$(systemctl is-active kubelet 2>/dev/null)"`

// Facts are one node's state as stateCommand reports it.
type Facts struct {
	Files         map[string]bool
	Role          string // from JoinedMarker: "control-plane", "worker" or ""
	KubeletActive bool
}

// ParseFacts reads stateCommand's output.
func ParseFacts(out string) Facts {
	f := Facts{Files: map[string]bool{}}
	for _, line := range strings.Split(out, "\n") {
		line = strings.TrimSpace(line)
		if v, ok := strings.CutPrefix(line, "kubelet="); ok {
			f.KubeletActive = v == "active"
		} else if v, ok := strings.CutPrefix(line, "role="); ok {
			f.Role = v
		} else if line != "" {
			f.Files[line] = true
		}
	}
	return f
}

// Classify says whether a node is joined, partial or fresh for the role
// it has in the inventory: joined when kubeadm finished (JoinedMarker) and
// the kubelet's files are there, partial when anything of an init or join
// is there, else fresh. A node joined as a worker that the inventory now
// lists as a control plane is an error: promotion is not built.
func Classify(f Facts, controlPlane bool) (NodeState, error) {
	kubelet := f.Files["/etc/kubernetes/kubelet.conf"] && f.Files["/var/lib/kubelet/config.yaml"]
	switch {
	case kubelet && f.Role == RoleWorker && controlPlane:
		return Joined, fmt.Errorf("joined as a worker but listed as a control plane; metalk8s cannot promote a worker yet: remove it from the control-plane group, or remove the node (kubeadm reset) and run up again")
	case kubelet && f.Role != "":
		return Joined, nil
	case f.Role != "":
		return Partial, nil
	}
	for _, p := range stateFiles {
		if f.Files[p] {
			return Partial, nil
		}
	}
	return Fresh, nil
}

// Roles a node joins as, in JoinedMarker.
const (
	RoleControlPlane = "control-plane"
	RoleWorker       = "worker"
)

// runState is what the Kubernetes steps of one run know of the nodes:
// filled by the read-only node-state checks, updated by init and join.
type runState struct {
	mu     sync.Mutex
	nodes  map[string]NodeState
	active map[string]bool
}

func newRunState() *runState {
	return &runState{nodes: map[string]NodeState{}, active: map[string]bool{}}
}

func (s *runState) set(host string, st NodeState, active bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nodes[host], s.active[host] = st, active
}

func (s *runState) get(host string) (NodeState, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.nodes[host], s.active[host]
}

// joinedOf returns the hosts of names that are joined, in order.
func (s *runState) joinedOf(names []string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, n := range names {
		if s.nodes[n] == Joined {
			out = append(out, n)
		}
	}
	return out
}

// readState runs the read-only state check on a host.
func readState(ctx context.Context, h steps.Host, controlPlane bool) (NodeState, Facts, error) {
	out, err := h.Run(ctx, stateCommand)
	if err != nil {
		return Fresh, Facts{}, err
	}
	f := ParseFacts(string(out))
	st, err := Classify(f, controlPlane)
	return st, f, err
}
