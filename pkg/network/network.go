// Package network builds what the pod network needs: flannel in VXLAN mode
// (node subnets from the nodes' podCIDRs), kube-network-policies for
// NetworkPolicy, and the per-node CNI configuration (bridge + host-local)
// that puts pods on each node's podCIDR. The builders are pure: they return
// Kubernetes objects made from k8s.io/api types and bytes for files, and
// apply nothing.
package network

import (
	"fmt"
	"net/netip"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
)

// PluginFlannel is the only kube_network_plugin value supported for now.
const PluginFlannel = "flannel"

// Upstream images, as the bundle carries them.
const (
	DefaultFlannelImage = "ghcr.io/flannel-io/flannel:v0.28.10"
	DefaultNetpolImage  = "registry.k8s.io/networking/kube-network-policies:v0.8.0"
)

// Params are the inputs of Objects.
type Params struct {
	// PodSubnet is kubespray's kube_pods_subnet, an IPv4 CIDR such as
	// "10.233.64.0/18"; the nodes' podCIDRs (from kube-controller-manager)
	// are cut from it.
	PodSubnet string
	// Bundled: images come from the offline bundle (imagePullPolicy Never),
	// else IfNotPresent.
	Bundled bool
	// EnableNFTables makes flannel write nftables rules instead of iptables
	// ones; set it when kube_proxy_mode is nftables (flannel's advice: use
	// the same backend as kube-proxy).
	EnableNFTables bool
	// IPTablesResync is flanneld's --iptables-resync (whole seconds); zero
	// leaves flannel's default (5 s).
	IPTablesResync time.Duration
	// FlannelImage and NetpolImage override the default images when not empty.
	FlannelImage, NetpolImage string
}

// CheckPlugin refuses kube_network_plugin values other than "flannel" (or
// empty, which means flannel).
func CheckPlugin(name string) error {
	if name == "" || name == PluginFlannel {
		return nil
	}
	return fmt.Errorf("kube_network_plugin %q: not supported, only %q is", name, PluginFlannel)
}

// Images returns the images the pod network's DaemonSets run, for the bundle.
func Images(p Params) []string {
	p = p.withDefaults()
	return []string{p.FlannelImage, p.NetpolImage}
}

func (p Params) withDefaults() Params {
	if p.FlannelImage == "" {
		p.FlannelImage = DefaultFlannelImage
	}
	if p.NetpolImage == "" {
		p.NetpolImage = DefaultNetpolImage
	}
	return p
}

func (p Params) pullPolicy() string {
	if p.Bundled {
		return "Never"
	}
	return "IfNotPresent"
}

// Objects returns every object of the pod network, in apply order (the
// Namespace first, RBAC before the DaemonSets): flannel's, then
// kube-network-policies'. Each has apiVersion and kind set, no status and no
// creationTimestamp. The error names a bad PodSubnet.
func Objects(p Params) ([]*unstructured.Unstructured, error) {
	p = p.withDefaults()
	if _, err := ipv4Prefix("kube_pods_subnet", p.PodSubnet); err != nil {
		return nil, err
	}
	fl, err := flannelObjects(p)
	if err != nil {
		return nil, err
	}
	typed := append(fl, netpolObjects(p)...)
	out := make([]*unstructured.Unstructured, 0, len(typed))
	for _, o := range typed {
		u, err := toUnstructured(o)
		if err != nil {
			return nil, err
		}
		out = append(out, u)
	}
	return out, nil
}

// ipv4Prefix parses an IPv4 network address in CIDR form ("10.233.64.0/18");
// host bits set, IPv6 and bad syntax are errors naming what (the variable).
func ipv4Prefix(what, s string) (netip.Prefix, error) {
	pfx, err := netip.ParsePrefix(s)
	if err != nil {
		return pfx, fmt.Errorf("%s %q: %w", what, s, err)
	}
	if !pfx.Addr().Is4() {
		return pfx, fmt.Errorf("%s %q: not IPv4 (only IPv4 pod networks are supported)", what, s)
	}
	if pfx.Masked() != pfx {
		return pfx, fmt.Errorf("%s %q: host bits set, the network is %s", what, s, pfx.Masked())
	}
	return pfx, nil
}

// toUnstructured converts a typed object whose TypeMeta is set, dropping
// status, an empty spec and the null creationTimestamps (top and pod
// template), which metalk8s never sets.
func toUnstructured(obj runtime.Object) (*unstructured.Unstructured, error) {
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return nil, fmt.Errorf("network: converting %T: %w", obj, err)
	}
	delete(m, "status")
	if spec, ok := m["spec"].(map[string]any); ok && len(spec) == 0 {
		delete(m, "spec") // a Namespace's
	}
	dropNullTimestamp(m)
	if tmpl, ok, _ := unstructured.NestedMap(m, "spec", "template"); ok {
		dropNullTimestamp(tmpl)
		m["spec"].(map[string]any)["template"] = tmpl
	}
	u := &unstructured.Unstructured{Object: m}
	if u.GetAPIVersion() == "" || u.GetKind() == "" {
		return nil, fmt.Errorf("network: %T %q has no apiVersion or kind", obj, u.GetName())
	}
	return u, nil
}

func dropNullTimestamp(obj map[string]any) {
	if md, ok := obj["metadata"].(map[string]any); ok && md["creationTimestamp"] == nil {
		delete(md, "creationTimestamp")
	}
}

// typeMeta is shorthand for the TypeMeta every builder sets.
func typeMeta(apiVersion, kind string) metav1.TypeMeta {
	return metav1.TypeMeta{APIVersion: apiVersion, Kind: kind}
}
