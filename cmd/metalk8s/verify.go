package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/metalk8s/metalk8s/pkg/cluster"
	"github.com/metalk8s/metalk8s/pkg/kube"
	"github.com/metalk8s/metalk8s/pkg/ssh"
	"github.com/metalk8s/metalk8s/pkg/verify"
)

func verifyCommand() *cli.Command {
	return &cli.Command{
		Name:      "verify",
		Usage:     "check a running cluster: nodes Ready, system pods, DNS, the metrics API, each addon's health, and from test pods DNS, a Service across nodes, an ingress route, a NetworkPolicy, a volume written and read",
		ArgsUsage: "hosts.ini",
		Description: "It can run at any time and changes nothing in the cluster but a namespace of\n" +
			"its own, metalk8s-verify-<random>, deleted at the end, also when interrupted\n" +
			"(one left by a killed run is deleted by the next after 15 minutes). There two\n" +
			"pods of Kubernetes' test image agnhost (in every bundle), on two nodes, check\n" +
			"DNS from a pod, a Service across nodes, a route through the ingress Gateway and\n" +
			"a NetworkPolicy. For the volume check, a claim takes the first PersistentVolume\n" +
			"of class local-lvm that no one has claimed, a pod writes a file on it\n" +
			"(<volume>/metalk8s-verify-<random>), a second pod reads it back, and over SSH\n" +
			"the file is found on the node and removed; the volume is then made Available\n" +
			"again (nothing else on it is read or changed; skipped when every volume is\n" +
			"claimed). It\n" +
			"reaches the API with <inventory dir>/artifacts/admin.conf through the control\n" +
			"planes' SSH connections and prints a table of checks (pass, fail, skip; --output\n" +
			"json for scripts). Exit codes: 0 every check passed or was skipped, 1 a check\n" +
			"failed, 2 bad usage or input.",
		Flags: append([]cli.Flag{inventoryFlag,
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Value: "text", Usage: "`text` or json"},
		}, sshFlags()...),
		Action: runVerify,
	}
}

func runVerify(c *cli.Context) error {
	format := c.String("output")
	if format != "text" && format != "json" {
		return usageError{"verify: --output must be text or json"}
	}
	cl, err := loadCluster(c)
	if err != nil {
		return err
	}
	conf, err := os.ReadFile(kube.AdminConfPath(cluster.ArtifactsDir(cl)))
	if err != nil {
		return usageError{fmt.Sprintf("verify: the admin kubeconfig: %v (made by metalk8s up)", err)}
	}
	pool, err := newPool(c)
	if err != nil {
		return err
	}
	var cps, nodes []string
	for _, n := range cl.Nodes {
		if n.ControlPlane {
			cps = append(cps, n.Name)
		}
		if n.ControlPlane || n.Worker {
			nodes = append(nodes, n.Name)
		}
	}
	// One SSH client per node, opened when first needed.
	var mu sync.Mutex
	clients := map[string]*ssh.Client{}
	defer func() {
		for _, sc := range clients {
			sc.Close()
		}
	}()
	client := func(name string) (*ssh.Client, error) {
		mu.Lock()
		defer mu.Unlock()
		if sc := clients[name]; sc != nil {
			return sc, nil
		}
		n := cl.Node(name)
		if n == nil {
			return nil, fmt.Errorf("%s is not in the inventory", name)
		}
		sc, err := pool.Client(n.Name, n.SSH)
		if err != nil {
			return nil, err
		}
		clients[name] = sc
		return sc, nil
	}
	dial := func(name string) (kube.Dialer, error) { return client(name) }
	// The volume check removes its file on the volume's node.
	host := func(ctx context.Context, name, cmd string) ([]byte, error) {
		sc, err := client(name)
		if err != nil {
			return nil, err
		}
		res, err := sc.Run(ctx, cmd)
		if err != nil {
			return nil, err
		}
		return res.Stdout, nil
	}
	image, domain, err := cluster.VerifyParams(cl)
	if err != nil {
		return err
	}
	sig, stop := interruptible(c.Context, c.App.ErrWriter, " (its namespace is then deleted by the next verify, after 15 minutes)")
	defer stop()
	ctx, cancel := context.WithTimeout(sig, 10*time.Minute)
	defer cancel()
	kc, err := kube.Connect(ctx, conf, cps, dial)
	if err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	rs := verify.Run(ctx, verify.Cluster{Client: kc, Nodes: nodes, TestImage: image, DNSDomain: domain, Host: host})
	if format == "json" {
		enc := json.NewEncoder(c.App.Writer)
		enc.SetIndent("", "  ")
		if err := enc.Encode(struct {
			Results []verify.Result `json:"results"`
			Failed  int             `json:"failed"`
		}{rs, verify.Failed(rs)}); err != nil {
			return err
		}
	} else {
		w := tabwriter.NewWriter(c.App.Writer, 0, 0, 2, ' ', 0)
		fmt.Fprintln(w, "CHECK\tRESULT\tDETAIL")
		for _, r := range rs {
			fmt.Fprintf(w, "%s\t%s\t%s\n", r.Check, r.Status, r.Detail)
		}
		w.Flush()
	}
	if n := verify.Failed(rs); n > 0 {
		return cli.Exit(fmt.Sprintf("verify: %d of %d checks failed", n, len(rs)), exitFailure)
	}
	return nil
}
