package network

import (
	"encoding/json"
	"fmt"
)

// CNI configuration on the nodes.
const (
	CNIConfPath    = "/etc/cni/net.d/10-metalk8s.conflist"
	CNINetworkName = "metalk8s"
	CNIBridge      = "cni0"
	CNIBinDir      = "/opt/cni/bin" // bridge, host-local, loopback, portmap from the bundle
	// VXLANMTU is the pods' MTU under flannel's VXLAN on a 1500-byte network:
	// VXLAN adds 50 bytes of headers (flannel pkg/backend/vxlan).
	VXLANMTU = 1450
)

// The conflist, after the CNI spec 1.0.0 and the reference plugins' configs.
type (
	cniConfList struct {
		CNIVersion string `json:"cniVersion"`
		Name       string `json:"name"`
		Plugins    []any  `json:"plugins"`
	}
	// bridgeConf is the bridge plugin's: pods on one Linux bridge per node,
	// the bridge holding the gateway (the subnet's first address).
	bridgeConf struct {
		Type             string   `json:"type"`
		Bridge           string   `json:"bridge"`
		IsGateway        bool     `json:"isGateway"`
		IsDefaultGateway bool     `json:"isDefaultGateway"`
		IPMasq           bool     `json:"ipMasq"`
		HairpinMode      bool     `json:"hairpinMode"`
		MTU              int      `json:"mtu"`
		IPAM             ipamConf `json:"ipam"`
	}
	ipamConf struct {
		Type   string        `json:"type"`
		Ranges [][]rangeConf `json:"ranges"`
	}
	rangeConf struct {
		Subnet string `json:"subnet"`
	}
	portmapConf struct {
		Type         string          `json:"type"`
		Capabilities map[string]bool `json:"capabilities"`
	}
)

// CNIConfig returns the CNI conflist of one node (CNIConfPath), JSON ending
// in a newline: the bridge plugin on cni0 with host-local addresses from the
// node's podCIDR (its one range; the pod's default route via the bridge), no
// masquerade (flanneld's --ip-masq does it), hairpin on (a pod reaches itself
// through its Service), then portmap for hostPort. Flannel's own CNI plugin
// would do the same from /run/flannel/subnet.env; its module is not served,
// and with the kube subnet manager the node's podCIDR is flannel's subnet.
// podCIDR is IPv4 in CIDR form ("10.233.65.0/24"); mtu 0 means VXLANMTU,
// otherwise 68-65535. The error names the bad value.
func CNIConfig(podCIDR string, mtu int) ([]byte, error) {
	pfx, err := ipv4Prefix("node podCIDR", podCIDR)
	if err != nil {
		return nil, err
	}
	if pfx.Bits() > 30 {
		return nil, fmt.Errorf("node podCIDR %q: a /%d leaves no room for pods", podCIDR, pfx.Bits())
	}
	if mtu == 0 {
		mtu = VXLANMTU
	}
	if mtu < 68 || mtu > 65535 {
		return nil, fmt.Errorf("CNI MTU %d: outside 68-65535", mtu)
	}
	conf := cniConfList{
		CNIVersion: "1.0.0",
		Name:       CNINetworkName,
		Plugins: []any{
			bridgeConf{
				Type: "bridge", Bridge: CNIBridge,
				IsGateway: true, IsDefaultGateway: true,
				IPMasq: false, HairpinMode: true, MTU: mtu,
				IPAM: ipamConf{Type: "host-local", Ranges: [][]rangeConf{{{Subnet: pfx.String()}}}},
			},
			portmapConf{Type: "portmap", Capabilities: map[string]bool{"portMappings": true}},
		},
	}
	b, err := json.MarshalIndent(conf, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("CNI config for %s: %w", podCIDR, err)
	}
	return append(b, '\n'), nil
}
