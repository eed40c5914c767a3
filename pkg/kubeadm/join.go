package kubeadm

import (
	"context"
	"fmt"
	"path"
	"strings"
	"time"

	"github.com/metalk8s/metalk8s/pkg/inventory"
	"github.com/metalk8s/metalk8s/pkg/ssh"
	"github.com/metalk8s/metalk8s/pkg/steps"
)

// configFile is where a node's kubeadm configuration is written (0600: a
// join configuration holds a bootstrap token) and validated before use.
const configFile = "/etc/kubernetes/metalk8s/kubeadm.yaml"

// joinSteps bring each node into the cluster: the control planes one
// after another (init on the first when no control plane is joined yet),
// then artifacts/admin.conf, then the workers in parallel.
func (g *graph) joinSteps() []*steps.Step {
	var out []*steps.Step
	// Whether to init depends on every control plane's state.
	var stateIDs []string
	for _, n := range g.cl.ControlPlane {
		stateIDs = append(stateIDs, steps.ID(phaseOf(n)+"/node-state", n.Name))
	}
	first := g.cps[0]
	adminID := steps.ID("control-plane/admin-conf", first)
	prev := ""
	var cpJoins []string
	for i, n := range g.cl.ControlPlane {
		deps := append([]string{steps.ID("control-plane/certs", n.Name)}, g.nodeDeps(n)...)
		deps = append(deps, stateIDs...)
		deps = append(deps, steps.ID("etcd/health", g.cl.Etcd[0].Name))
		if i > 0 {
			deps = append(deps, prev, adminID)
		}
		s := g.joinStep(n, deps)
		out = append(out, s)
		cpJoins = append(cpJoins, s.ID)
		prev = s.ID
		if i == 0 {
			out = append(out, g.adminConfStep(adminID, s.ID))
		}
	}
	for _, n := range g.cl.Workers {
		if n.ControlPlane {
			continue
		}
		deps := append(append(g.nodeDeps(n), stateIDs...), adminID, steps.ID("workers/node-state", n.Name))
		deps = append(deps, cpJoins...)
		out = append(out, g.joinStep(n, deps))
	}
	out = append(out, g.readyStep(append(cpJoins, adminID)))
	return out
}

// nodeDeps are what a node needs before kubeadm runs on it.
func (g *graph) nodeDeps(n *inventory.Node) []string {
	return append([]string{steps.ID("prepare/kubelet-unit", n.Name)}, g.prepared[n.Name]...)
}

// initHost is the control plane that runs kubeadm init: the first one,
// and only while no control plane is joined.
func (g *graph) initHost() string {
	if len(g.st.joinedOf(g.cps)) > 0 {
		return ""
	}
	return g.cps[0]
}

func (g *graph) joinStep(n *inventory.Node, deps []string) *steps.Step {
	host := n.Name
	return &steps.Step{ID: JoinStepID(n), Host: host, Phase: phaseOf(n), Deps: deps, Units: units, Diag: diag,
		Inputs: g.p,
		// Only a join that timed out in kubeadm's preflight is tried again.
		Retry: steps.Retry{Attempts: joinAttempts, Delay: 10 * time.Second, If: preflightTimeout},
		Check: func(ctx context.Context, h steps.Host) (steps.Change, error) {
			st, active := g.st.get(host)
			var diff []string
			switch {
			case st == Joined && active:
				return steps.NoChange, nil
			case st == Joined:
				return steps.Changes("~ start kubelet"), nil
			case st == Partial:
				diff = append(diff, "~ scoped reset of an earlier init or join that did not finish")
			}
			switch {
			case g.initHost() == host:
				diff = append(diff, fmt.Sprintf("+ kubeadm init (Kubernetes %s, control-plane endpoint %s)", g.p.Versions().Kube, g.endpointName()))
			case n.ControlPlane:
				diff = append(diff, "+ kubeadm join --control-plane")
			default:
				diff = append(diff, "+ kubeadm join")
			}
			return steps.Changes(diff...), nil
		},
		Apply: func(ctx context.Context, h steps.Host) error {
			st, active := g.st.get(host)
			if st == Joined {
				if !active {
					if _, err := h.Run(ctx, "systemctl start kubelet && systemctl is-active kubelet"); err != nil {
						return err
					}
					g.st.set(host, Joined, true)
				}
				return nil
			}
			if g.initHost() != host {
				if err := g.checkNameFree(ctx, host); err != nil {
					return err
				}
			}
			if st == Partial {
				if _, err := h.Run(ctx, resetScript(n.ControlPlane)); err != nil {
					return fmt.Errorf("scoped reset: %w", err)
				}
			}
			var err error
			if g.initHost() == host {
				err = g.init(ctx, h, n)
			} else {
				err = g.join(ctx, h, n)
			}
			if err != nil {
				return err
			}
			role := RoleWorker
			if n.ControlPlane {
				role = RoleControlPlane
			}
			if _, err := h.Run(ctx, fmt.Sprintf("mkdir -p %s && echo %s > %s", path.Dir(JoinedMarker), role, JoinedMarker)); err != nil {
				return err
			}
			g.st.set(host, Joined, true)
			return nil
		}}
}

// init runs kubeadm init on the first control plane: the endpoint name
// resolves to this node (or the external balancer) first.
func (g *graph) init(ctx context.Context, h steps.Host, n *inventory.Node) error {
	if err := setEndpointAddress(ctx, h, g.endpointName(), g.finalEndpointAddress(n)); err != nil {
		return err
	}
	cfg, err := g.p.InitConfig(n)
	if err != nil {
		return err
	}
	return runKubeadm(ctx, h, cfg, "init --skip-token-print --config "+configFile)
}

// join joins a node with a bootstrap token made for it and deleted after:
// during the join the endpoint name resolves to a joined control plane
// (or the balancer); the endpoint step points it home afterwards.
func (g *graph) join(ctx context.Context, h steps.Host, n *inventory.Node) error {
	c, err := g.client(ctx)
	if err != nil {
		return err
	}
	tok, err := createToken(ctx, c.Typed(), n.Name, 15*time.Minute)
	if err != nil {
		return err
	}
	defer func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		_ = deleteToken(dctx, c.Typed(), tok)
	}()
	addr, err := g.joinEndpointAddress(c.Host())
	if err != nil {
		return err
	}
	if err := setEndpointAddress(ctx, h, g.endpointName(), addr); err != nil {
		return err
	}
	files, err := g.kpki.Files()
	if err != nil {
		return err
	}
	disc, err := g.p.DiscoveryConfig(files["ca.crt"])
	if err != nil {
		return err
	}
	cfg, err := g.p.JoinConfig(n, n.ControlPlane, tok)
	if err != nil {
		return err
	}
	return runKubeadm(ctx, h, cfg, "join --config "+configFile, ssh.File{Path: DiscoveryFile, Data: disc, Mode: 0o600})
}

// joinAttempts is how many times a join that timed out in its preflight
// phase is tried (10 s, then 20 s apart).
const joinAttempts = 3

// preflightTimeout tells a kubeadm join that failed in its preflight
// phase on a timeout ("error execution phase preflight: ... Client.Timeout
// exceeded") from other failures: kubeadm gives those API calls a fixed
// 10 s and no retry, which a busy control plane can exceed, and that phase
// changes nothing on the node. A failure in a later phase, or a dropped
// connection, is not tried again.
func preflightTimeout(err error) bool {
	s := err.Error()
	if !strings.Contains(s, "error execution phase preflight") {
		return false
	}
	for _, t := range []string{"Client.Timeout exceeded", "context deadline exceeded", "TLS handshake timeout", "i/o timeout"} {
		if strings.Contains(s, t) {
			return true
		}
	}
	return false
}

// runKubeadm writes the configuration (0600) and the other files kubeadm
// reads (a join's discovery kubeconfig), has kubeadm validate the
// configuration, runs kubeadm, and removes every file it wrote (a join's
// configuration holds a token) whatever came of it. kubeadm's output goes
// to the run log.
func runKubeadm(ctx context.Context, h steps.Host, cfg []byte, args string, more ...ssh.File) error {
	files := append([]ssh.File{{Path: configFile, Data: cfg, Mode: 0o600}}, more...)
	rm := "rm -f"
	for _, f := range files {
		rm += " " + ssh.Quote(f.Path)
	}
	defer h.Run(context.WithoutCancel(ctx), rm)
	if _, err := steps.PutFiles(ctx, h, files); err != nil {
		return err
	}
	if _, err := h.Run(ctx, "kubeadm config validate --config "+configFile); err != nil {
		return fmt.Errorf("kubeadm rejected the configuration metalk8s made: %w", err)
	}
	_, err := h.Run(ctx, "kubeadm "+args+" --v=1")
	return err
}

// resetScript undoes an init or join that did not finish, and only that:
// the kubelet's configuration and kubeconfigs, the control plane's static
// pods and the certificates kubeadm made from the CAs, and the pods the
// kubelet started. The CAs metalk8s copied, etcd (its certificates, unit
// and data), LVM volumes and firewall rules are left alone (a full
// `kubeadm reset` would remove /etc/kubernetes/pki, etcd's certificates
// included).
func resetScript(controlPlane bool) string {
	s := `systemctl stop kubelet || true
crictl --runtime-endpoint unix:///run/containerd/containerd.sock rmp -fa >/dev/null 2>&1 || true
rm -f /etc/kubernetes/manifests/kube-apiserver.yaml /etc/kubernetes/manifests/kube-controller-manager.yaml /etc/kubernetes/manifests/kube-scheduler.yaml /etc/kubernetes/manifests/apiserver-proxy.yaml
rm -f /etc/kubernetes/admin.conf /etc/kubernetes/super-admin.conf /etc/kubernetes/kubelet.conf /etc/kubernetes/bootstrap-kubelet.conf /etc/kubernetes/controller-manager.conf /etc/kubernetes/scheduler.conf
rm -f /etc/kubernetes/pki/apiserver.crt /etc/kubernetes/pki/apiserver.key /etc/kubernetes/pki/apiserver-kubelet-client.crt /etc/kubernetes/pki/apiserver-kubelet-client.key /etc/kubernetes/pki/front-proxy-client.crt /etc/kubernetes/pki/front-proxy-client.key
rm -rf /var/lib/kubelet/pki /var/lib/kubelet/config.yaml /var/lib/kubelet/kubeadm-flags.env /var/lib/kubelet/instance-config.yaml
rm -f ` + JoinedMarker + ` /etc/cni/net.d/10-metalk8s.conflist`
	if !controlPlane {
		// A worker's join writes the cluster CA; its preflight wants it gone.
		s += "\nrm -f /etc/kubernetes/pki/ca.crt"
	}
	return s
}

// endpointName is the name in every kubeconfig kubeadm writes.
func (g *graph) endpointName() string {
	name, _ := g.p.Endpoint()
	return name
}

// finalEndpointAddress is what the endpoint name resolves to on a node
// once it is joined: the external balancer, else this node's apiserver
// (control planes) or its apiserver proxy (workers), both on 127.0.0.1.
func (g *graph) finalEndpointAddress(n *inventory.Node) string {
	if lb := g.lbAddress(); lb != "" {
		return lb
	}
	return "127.0.0.1"
}

// joinEndpointAddress is where a joining node reaches the API: the
// balancer, else the control plane whose apiserver answered the run's
// client (healthy a moment ago).
func (g *graph) joinEndpointAddress(healthy string) (string, error) {
	if lb := g.lbAddress(); lb != "" {
		return lb, nil
	}
	for _, n := range g.cl.ControlPlane {
		if n.Name == healthy {
			return n.Address(), nil
		}
	}
	return "", fmt.Errorf("the API client's control plane %q is not in the inventory", healthy)
}

// checkNameFree refuses to join a node whose name a Ready node of the
// cluster already has: two hosts with one name would fight over it.
func (g *graph) checkNameFree(ctx context.Context, host string) error {
	c, err := g.client(ctx)
	if err != nil {
		return err
	}
	ready, found, err := nodeReady(ctx, c.Typed(), host)
	if err != nil {
		return err
	}
	if found && ready {
		return fmt.Errorf("a Ready node named %s is already in the cluster, while host %s has no kubeadm install: another machine has this name (rename one in the inventory), or remove the node first (kubectl delete node %s)", host, host, host)
	}
	return nil
}

// lbAddress is the external balancer's address, "" without one.
func (g *graph) lbAddress() string {
	if g.p.LoadBalancer == nil {
		return ""
	}
	return g.p.LoadBalancer.Address
}
