package inventory

import (
	"fmt"
	"strings"
)

// Group names, old (MetalK8s 0.x, kubespray < 2.16) and new.
var (
	ControlPlaneGroups = []string{"kube-master", "kube_control_plane"}
	EtcdGroups         = []string{"etcd"}
	WorkerGroups       = []string{"kube-node", "kube_node"}
	ClusterGroups      = []string{"k8s-cluster", "k8s_cluster"}
)

// Cluster is the typed view of an inventory: who does what, and how to
// reach each node.
type Cluster struct {
	Inventory    *Inventory
	Nodes        []*Node // every host of the cluster, in inventory order
	ControlPlane []*Node
	Etcd         []*Node
	Workers      []*Node
	// Warnings are what the inventory allows but an operator should
	// hear: an even number of etcd hosts. Commands print them first.
	Warnings []string
}

// Node is one host of the cluster.
type Node struct {
	Name    string
	SSH     SSHConfig
	IP      string // address cluster services bind to ("ip", kubespray's convention)
	Storage []VG   // for workers only
	// ForceDrives are drives (metalk8s_lvm_force_drives) whose partition
	// table, filesystem or LVM signature may be wiped to use them.
	ForceDrives []string
	Vars        map[string]any
	Source      map[string]string

	ControlPlane, Etcd, Worker bool
}

// Address is where the node's cluster services listen: "ip", else the
// SSH address.
func (n *Node) Address() string {
	if n.IP != "" {
		return n.IP
	}
	return n.SSH.Host
}

// NewCluster types and validates an inventory.
func NewCluster(inv *Inventory) (*Cluster, error) {
	c := &Cluster{Inventory: inv}
	cp := inv.hostsIn(ControlPlaneGroups)
	etcd := inv.hostsIn(EtcdGroups)
	workers := inv.hostsIn(WorkerGroups)
	if len(cp) == 0 {
		return nil, &Error{File: inv.Path, Msg: "no control-plane host: put at least one host in [kube-master] or [kube_control_plane]"}
	}
	if len(etcd) == 0 {
		return nil, &Error{File: inv.Path, Msg: "no etcd host: put an odd number of hosts (1, 3, 5) in [etcd]"}
	}
	if len(etcd)%2 == 0 {
		// Allowed, as etcd allows it: remove-node leaves 2 of 3 members
		// until the operator adds one back. kubespray stops on it
		// (ignore_assert_errors skips that).
		c.Warnings = append(c.Warnings, (&Error{File: inv.Path, Line: inv.groupLine(EtcdGroups), Msg: fmt.Sprintf(
			"the etcd group has %d hosts (%s): an even number tolerates no more failed members than %d would (etcd's FAQ); add or remove one",
			len(etcd), hostList(etcd), len(etcd)-1)}).Error())
	}
	// When the inventory names a cluster group, the control plane and the
	// workers must be in it.
	if cluster := inv.hostsIn(ClusterGroups); inv.hasGroup(ClusterGroups) {
		for _, h := range append(append([]*Host{}, cp...), workers...) {
			if !containsHost(cluster, h) {
				return nil, &Error{File: inv.Path, Line: h.Line, Msg: fmt.Sprintf("host %s is a control-plane or worker host but not in [k8s-cluster]/[k8s_cluster]; add its group to [k8s-cluster:children]", h.Name)}
			}
		}
	}
	for _, h := range inv.Groups["ungrouped"].Hosts {
		return nil, &Error{File: inv.Path, Line: h.Line, Msg: fmt.Sprintf("host %s is in no group, so it has no role in the cluster; put it in a group or remove it", h.Name)}
	}
	for _, name := range inv.hostOrder {
		h := inv.Hosts[name]
		isCP, isEtcd, isWorker := containsHost(cp, h), containsHost(etcd, h), containsHost(workers, h)
		if !isCP && !isEtcd && !isWorker {
			continue
		}
		n := &Node{Name: h.Name, Vars: h.Vars, Source: h.Source, ControlPlane: isCP, Etcd: isEtcd, Worker: isWorker}
		var err error
		if n.SSH, err = sshConfig(h); err != nil {
			return nil, err
		}
		if n.IP, err = optString(h, "ip"); err != nil {
			return nil, err
		}
		if isWorker {
			if n.Storage, err = storageSpec(h); err != nil {
				return nil, err
			}
			if n.ForceDrives, err = forceDrives(h, n.Storage); err != nil {
				return nil, err
			}
		}
		c.Nodes = append(c.Nodes, n)
		if isCP {
			c.ControlPlane = append(c.ControlPlane, n)
		}
		if isEtcd {
			c.Etcd = append(c.Etcd, n)
		}
		if isWorker {
			c.Workers = append(c.Workers, n)
		}
	}
	return c, nil
}

// hostsIn returns the hosts of any of the named groups (with their
// children), in inventory order.
func (inv *Inventory) hostsIn(groups []string) []*Host {
	in := map[*Host]bool{}
	for _, name := range groups {
		if g, ok := inv.Groups[name]; ok {
			for _, h := range inv.AllHosts(g) {
				in[h] = true
			}
		}
	}
	var out []*Host
	for _, name := range inv.hostOrder {
		if h := inv.Hosts[name]; in[h] {
			out = append(out, h)
		}
	}
	return out
}

func (inv *Inventory) hasGroup(names []string) bool {
	for _, n := range names {
		if _, ok := inv.Groups[n]; ok {
			return true
		}
	}
	return false
}

func (inv *Inventory) groupLine(names []string) int {
	for _, n := range names {
		if g, ok := inv.Groups[n]; ok && g.Line > 0 {
			return g.Line
		}
	}
	return 0
}

func hostList(hs []*Host) string {
	var names []string
	for _, h := range hs {
		names = append(names, h.Name)
	}
	return strings.Join(names, ", ")
}

// varError names the host, the variable and where the variable was set.
func varError(h *Host, key, format string, args ...any) error {
	where := h.Source[key]
	msg := fmt.Sprintf("host %s: variable %s: %s", h.Name, key, fmt.Sprintf(format, args...))
	if where != "" {
		msg += " (set in " + where + ")"
	}
	return &Error{Msg: msg}
}

// lookup returns the first of keys that the host defines.
func lookup(h *Host, keys ...string) (string, any, bool) {
	for _, k := range keys {
		if v, ok := h.Vars[k]; ok {
			return k, v, true
		}
	}
	return "", nil, false
}

func optString(h *Host, keys ...string) (string, error) {
	k, v, ok := lookup(h, keys...)
	if !ok || v == nil {
		return "", nil
	}
	if u, isUnsafe := v.(Unsafe); isUnsafe {
		v = string(u)
	}
	s, ok := v.(string)
	if !ok {
		return "", varError(h, k, "must be a string, found %s", typeName(v))
	}
	if strings.Contains(s, "{{") || strings.Contains(s, "{%") {
		return "", varError(h, k, "Jinja templates are not supported: %q", s)
	}
	return s, nil
}

func optInt(h *Host, keys ...string) (int, bool, error) {
	k, v, ok := lookup(h, keys...)
	if !ok || v == nil {
		return 0, false, nil
	}
	switch x := v.(type) {
	case int64:
		return int(x), true, nil
	case string:
		n, err := pyInt(x)
		if err == nil {
			return n, true, nil
		}
	}
	return 0, false, varError(h, k, "must be a whole number, found %v", v)
}

// optBool reads a boolean as Ansible's boolean() filter does.
func optBool(h *Host, keys ...string) (bool, error) {
	k, v, ok := lookup(h, keys...)
	if !ok || v == nil {
		return false, nil
	}
	if b, ok := Bool(v); ok {
		return b, nil
	}
	return false, varError(h, k, "must be a boolean (true/false, yes/no), found %v", v)
}

// Bool reads a variable's value as Ansible's boolean() filter does: a
// YAML boolean, 0 or 1, or one of y yes on 1 true t / n no off 0 false f
// in any case; ok is false for anything else.
func Bool(v any) (b, ok bool) {
	switch x := v.(type) {
	case bool:
		return x, true
	case int64:
		if x == 0 || x == 1 {
			return x == 1, true
		}
	case float64:
		if x == 0 || x == 1 {
			return x == 1, true
		}
	case string, Unsafe:
		switch strings.ToLower(strings.TrimSpace(fmt.Sprint(x))) {
		case "y", "yes", "on", "1", "true", "t":
			return true, true
		case "n", "no", "off", "0", "false", "f":
			return false, true
		}
	}
	return false, false
}

// Without is c without the named nodes: the cluster remove-node leaves.
// It shares c's Inventory and Node values and is not validated again (a
// 3-member etcd less one has 2 members, which NewCluster refuses for a
// new cluster but which is what removal makes until a member is added).
func (c *Cluster) Without(names map[string]bool) *Cluster {
	keep := func(ns []*Node) []*Node {
		var out []*Node
		for _, n := range ns {
			if !names[n.Name] {
				out = append(out, n)
			}
		}
		return out
	}
	return &Cluster{Inventory: c.Inventory, Nodes: keep(c.Nodes), ControlPlane: keep(c.ControlPlane),
		Etcd: keep(c.Etcd), Workers: keep(c.Workers)}
}

// Node is the node named name, or nil.
func (c *Cluster) Node(name string) *Node {
	for _, n := range c.Nodes {
		if n.Name == name {
			return n
		}
	}
	return nil
}
