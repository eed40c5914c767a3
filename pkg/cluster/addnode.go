package cluster

import (
	"fmt"
	"sort"
	"strings"

	"github.com/metalk8s/metalk8s/pkg/inventory"
	"github.com/metalk8s/metalk8s/pkg/steps"
)

// clusterSide are the steps add-node runs on hosts other than the ones it
// adds: the changes new hosts cause elsewhere. A step is named by its
// kind ("etcd/pki"), or a phase's prefix ("addons/": every addon).
//   - etcd/pki, control-plane/pki: the new members' and control planes'
//     certificates (on the first control plane);
//   - etcd/health: quorum checked after the new members joined;
//   - workers/apiserver-proxy: the workers' lists of API servers;
//   - control-plane/ready, workers/nodes-ready: the new nodes Ready;
//   - volumes/: the new nodes' PersistentVolumes;
//   - addons/: what the addons' values take from the inventory (the
//     node-exporters and etcd members monitoring scrapes).
//
// Every check-only step runs too, on every host (no Apply: preflight's,
// etcd/data, the node-state ones): later steps decide from the facts they
// gather, e.g. a new etcd member joins with MemberAdd only when it sees
// the others' data, and a node joins through a control plane seen joined
// (without them node3, added back after remove-node on the lab,
// bootstrapped an etcd cluster of its own). pki/recover runs as well
// (read-only unless the local PKI is lost).
var clusterSide = []string{"preflight/", "pki/recover", "etcd/pki", "etcd/health", "control-plane/pki", "control-plane/ready",
	"workers/apiserver-proxy", "workers/nodes-ready", "volumes/", "addons/"}

// AddNodePick is add-node's selection of cl's steps (steps.Options.Pick):
// every step on the hosts nodes names (inventory names), and the
// cluster-side steps (clusterSide) on the others. The steps left out must
// be done already (the journal), as for a skipped phase: add-node extends
// a cluster that `up` made. A name that is not an inventory host is an
// error listing them.
func AddNodePick(cl *inventory.Cluster, nodes []string) (func(*steps.Step) bool, error) {
	if len(nodes) == 0 {
		return nil, fmt.Errorf("add-node: name the hosts to add (inventory names)")
	}
	known := map[string]bool{}
	for _, n := range cl.Nodes {
		known[n.Name] = true
	}
	adding := map[string]bool{}
	var unknown []string
	for _, n := range nodes {
		if !known[n] {
			unknown = append(unknown, n)
		}
		adding[n] = true
	}
	if len(unknown) > 0 {
		var names []string
		for n := range known {
			names = append(names, n)
		}
		sort.Strings(names)
		return nil, fmt.Errorf("add-node: %s not in the inventory %s (its hosts: %s): add them to it first",
			strings.Join(unknown, ", "), cl.Inventory.Path, strings.Join(names, ", "))
	}
	return func(s *steps.Step) bool { return adding[s.Host] || s.Apply == nil || kindIn(s.ID, clusterSide) }, nil
}
