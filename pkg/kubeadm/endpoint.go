package kubeadm

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/metalk8s/metalk8s/pkg/inventory"
	"github.com/metalk8s/metalk8s/pkg/kube"
	"github.com/metalk8s/metalk8s/pkg/ssh"
	"github.com/metalk8s/metalk8s/pkg/steps"
)

// adminConfStep keeps <inventory>/artifacts/admin.conf (0600): the
// control plane's admin.conf with its server set to the address the
// operator reaches (Params.AdminServer).
func (g *graph) adminConfStep(id, initID string) *steps.Step {
	path := kube.AdminConfPath(g.art)
	return &steps.Step{ID: id, Host: g.cps[0], Phase: "control-plane", Deps: []string{initID},
		Inputs: g.p.AdminServer(),
		Check: func(ctx context.Context, h steps.Host) (steps.Change, error) {
			if st, _ := g.st.get(h.Name()); st != Joined {
				return steps.Changes("+ write " + path + " (after kubeadm init)"), nil
			}
			want, err := g.adminConf(ctx, h)
			if err != nil {
				return steps.NoChange, err
			}
			have, err := os.ReadFile(path)
			switch {
			case os.IsNotExist(err):
				return steps.Changes("+ write " + path), nil
			case err != nil:
				return steps.NoChange, err
			case !bytes.Equal(have, want):
				return steps.Changes("~ update " + path + " (server " + g.p.AdminServer() + ")"), nil
			}
			return steps.NoChange, nil
		},
		Apply: func(ctx context.Context, h steps.Host) error {
			want, err := g.adminConf(ctx, h)
			if err != nil {
				return err
			}
			if err := os.MkdirAll(g.art, 0o700); err != nil {
				return err
			}
			return steps.WriteFileAtomic(path, want, 0o600)
		}}
}

// adminConf reads the node's /etc/kubernetes/admin.conf (kept out of the
// run log) and points it at the operator's address.
func (g *graph) adminConf(ctx context.Context, h steps.Host) ([]byte, error) {
	raw, err := steps.ReadSecret(ctx, h, "/etc/kubernetes/admin.conf")
	if err != nil {
		return nil, err
	}
	cfg, err := clientcmd.Load(raw)
	if err != nil {
		return nil, fmt.Errorf("%s: /etc/kubernetes/admin.conf: %w", h.Name(), err)
	}
	for _, c := range cfg.Clusters {
		c.Server = "https://" + g.p.AdminServer()
	}
	return clientcmd.Write(*cfg)
}

// readyCheckWithin is how long the ready step's Check waits for the API of
// a joined cluster before it reports a wait to come.
const readyCheckWithin = 2 * time.Minute

// readyStep (kube.ReadyStepID) waits for the API to answer through
// admin.conf and for every control plane to be registered.
func (g *graph) readyStep(deps []string) *steps.Step {
	check := func(ctx context.Context) error {
		c, err := g.client(ctx)
		if err != nil {
			return err
		}
		if _, err := c.Typed().Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx); err != nil {
			return fmt.Errorf("API /readyz: %w", err)
		}
		for _, cp := range g.cps {
			if _, found, err := nodeReady(ctx, c.Typed(), cp); err != nil {
				return err
			} else if !found {
				return fmt.Errorf("control plane %s not registered", cp)
			}
		}
		return nil
	}
	return &steps.Step{ID: steps.ID(kube.ReadyStepID, g.cps[0]), Host: g.cps[0], Phase: "control-plane", Deps: deps,
		Check: func(ctx context.Context, h steps.Host) (steps.Change, error) {
			if len(g.st.joinedOf(g.cps)) == 0 {
				return steps.Changes("~ wait for the API"), nil
			}
			// A joined control plane's API that is slow to answer (busy,
			// an apiserver restarting) is not a change: wait a little.
			if err := steps.Poll(ctx, readyCheckWithin, 5*time.Second, check); err != nil {
				if ctx.Err() != nil {
					return steps.NoChange, ctx.Err()
				}
				return steps.Changes("~ wait for the API (" + err.Error() + ")"), nil
			}
			return steps.NoChange, nil
		},
		Apply: func(ctx context.Context, h steps.Host) error {
			return steps.Poll(ctx, 5*time.Minute, 5*time.Second, check)
		}}
}

// endpointSteps point the endpoint name home on every joined node: to
// the balancer, or 127.0.0.1 (its apiserver, or on worker-only nodes the
// apiserver proxy set up first).
func (g *graph) endpointSteps() []*steps.Step {
	var out []*steps.Step
	lb := g.lbAddress() != ""
	for _, n := range kubeNodes(g.cl) {
		n := n
		deps := []string{JoinStepID(n)}
		if !n.ControlPlane && !lb {
			ps := g.proxyStep(n)
			out = append(out, ps)
			deps = append(deps, ps.ID)
		}
		want := g.finalEndpointAddress(n)
		name := g.endpointName()
		out = append(out, &steps.Step{ID: steps.ID(phaseOf(n)+"/endpoint", n.Name), Host: n.Name, Phase: phaseOf(n), Deps: deps,
			Inputs: []string{name, want},
			Check: func(ctx context.Context, h steps.Host) (steps.Change, error) {
				diff, err := endpointDiff(ctx, h, name, want)
				return steps.Changes(diff...), err
			},
			Apply: func(ctx context.Context, h steps.Host) error {
				return setEndpointAddress(ctx, h, name, want)
			}})
	}
	return out
}

// proxyStep runs the apiserver proxy on a worker-only node and waits
// until it reaches an apiserver.
func (g *graph) proxyStep(n *inventory.Node) *steps.Step {
	var backends []Backend
	for _, cp := range g.cl.ControlPlane {
		backends = append(backends, Backend{Name: cp.Name, Address: cp.Address(), Port: 6443})
	}
	pull := corev1.PullIfNotPresent
	if g.p.Bundled {
		pull = corev1.PullNever
	}
	build := func() ([]ssh.File, error) {
		cfg, err := ProxyConfig(backends)
		if err != nil {
			return nil, err
		}
		pod, err := ProxyManifest(g.p.Versions().AddonImages().HAProxy, pull, cfg)
		if err != nil {
			return nil, err
		}
		return []ssh.File{{Path: ProxyConfigFile, Data: cfg, Mode: 0o644}, {Path: ProxyManifestFile, Data: pod, Mode: 0o600}}, nil
	}
	return &steps.Step{ID: steps.ID("workers/apiserver-proxy", n.Name), Host: n.Name, Phase: "workers",
		Deps: []string{JoinStepID(n)}, Inputs: backends, Units: units, Diag: diag,
		Check: func(ctx context.Context, h steps.Host) (steps.Change, error) {
			files, err := build()
			if err != nil {
				return steps.NoChange, err
			}
			return steps.FilesChange(ctx, h, files)
		},
		Apply: func(ctx context.Context, h steps.Host) error {
			files, err := build()
			if err != nil {
				return err
			}
			if _, err := steps.PutFiles(ctx, h, files); err != nil {
				return err
			}
			_, err = h.Run(ctx, fmt.Sprintf(`for i in $(seq 120); do kubectl --kubeconfig /etc/kubernetes/kubelet.conf --server https://127.0.0.1:%d --request-timeout 5s get --raw /readyz >/dev/null 2>&1 && exit 0; sleep 2; done; echo "the apiserver proxy does not answer on 127.0.0.1:%d after 4 minutes" >&2; exit 1`, ProxyPort, ProxyPort))
			return err
		}}
}
