package main

import (
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/metalk8s/metalk8s/pkg/cluster"
	"github.com/metalk8s/metalk8s/pkg/kubeadm"
)

// removeFlags are remove-node's settings, plan --remove-node's too.
func removeFlags() []cli.Flag {
	return []cli.Flag{
		&cli.BoolFlag{Name: "unreachable", Usage: "the hosts are down for good: remove them from the cluster, skip the steps on them"},
		&cli.StringFlag{Name: "wipe-volumes", Usage: "delete the LVM volumes, and their data, of these removed `NODES` (comma-separated); kept otherwise"},
		&cli.BoolFlag{Name: "disable-eviction", Usage: "drain by deleting pods instead of evicting them: PodDisruptionBudgets are not asked"},
		durationFlag("drain-timeout", "give up draining a node after this long (default 5m)"),
		durationFlag("skip-wait-for-delete-timeout", "stop waiting for a pod whose deletion began more than this long ago, "+
			"e.g. stuck terminating on a node that cannot stop it (kubectl drain's flag; default: wait for every pod)"),
	}
}

// removeOptions reads removeFlags for nodes.
func removeOptions(c *cli.Context, nodes []string) *cluster.RemoveOptions {
	o := &cluster.RemoveOptions{Nodes: nodes, Unreachable: c.Bool("unreachable"),
		Drain: kubeadm.DrainOptions{Timeout: duration(c, "drain-timeout"), DisableEviction: c.Bool("disable-eviction"),
			SkipWaitForDeleteTimeout: duration(c, "skip-wait-for-delete-timeout"), Unreachable: c.Bool("unreachable")}}
	if w := c.String("wipe-volumes"); w != "" {
		o.WipeVolumes = strings.Split(w, ",")
	}
	return o
}

func removeNodeCommand() *cli.Command {
	return &cli.Command{
		Name:      "remove-node",
		Usage:     "take hosts out of the cluster: drain, etcd member removal, node reset; their volumes kept unless --wipe-volumes",
		ArgsUsage: "hosts.ini NODE...",
		Description: "Keep the hosts in the inventory until this has run, then delete them from it.\n" +
			"Refuses, changing nothing, when etcd would lose its quorum or no control plane\n" +
			"would be left; warns about pods whose local volumes are on the hosts. In order,\n" +
			"each a step that plan shows and a re-run resumes: cordon and drain (honouring\n" +
			"PodDisruptionBudgets), the other workers' lists of API servers, the etcd\n" +
			"member's removal, the Node objects and their unbound PersistentVolumes (bound\n" +
			"ones are reported), the addons' values; then on each host kubeadm reset and a\n" +
			"scoped cleanup: only Kubernetes' and the pod network's chains, ipsets, nftables\n" +
			"tables and IPVS services, the CNI state, metalk8s's files and units. Other\n" +
			"firewall rules and the LVM volumes stay (--wipe-volumes NODE deletes a host's).\n" +
			"`metalk8s plan --remove-node NODE,... hosts.ini` shows what it would change.\n" + confirmHelp,
		Flags: append(append(append([]cli.Flag{inventoryFlag,
			&cli.BoolFlag{Name: "force-unlock", Usage: "remove a lock left by a dead run before taking it"},
			yesFlag,
		}, removeFlags()...), phaseFlags()[:1]...), sshFlags()...),
		Action: func(c *cli.Context) error {
			nodes := c.Args().Slice()
			if c.String("inventory") == "" && len(nodes) > 0 {
				nodes = nodes[1:]
			}
			if len(nodes) == 0 {
				return usageError{"remove-node: name the hosts to remove: metalk8s remove-node hosts.ini NODE..."}
			}
			return runCluster(c, true, selection{remove: removeOptions(c, nodes)})
		},
	}
}
