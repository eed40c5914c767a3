package kubeadm

import (
	"net"
	"net/netip"
	"strconv"

	"github.com/metalk8s/metalk8s/pkg/bundle"
)

// Versions are the component versions of p.KubeVersion, from the bundle's
// version table.
func (p *Params) Versions() bundle.Versions { return p.versions }

// Endpoint is the control-plane endpoint every kubelet and kubeconfig
// kubeadm writes uses: the endpoint name, and loadbalancer_apiserver's
// port with a balancer, else APIServerPort. As in kubespray, the name is
// mapped in /etc/hosts: to the balancer's address when there is one,
// otherwise to a local path to the apiservers.
func (p *Params) Endpoint() (host string, port int) {
	if p.LoadBalancer != nil {
		return p.EndpointName, p.LoadBalancer.Port
	}
	return p.EndpointName, APIServerPort
}

// controlPlaneEndpoint is Endpoint as "host:port".
func (p *Params) controlPlaneEndpoint() string {
	h, port := p.Endpoint()
	return net.JoinHostPort(h, strconv.Itoa(port))
}

// AdminServer is the "host:port" the operator's admin.conf points at
// (its server is "https://" + AdminServer()): the inventory's metalk8s_admin_api_address
// ("host:port"; the lab sets its QEMU port forward, 127.0.0.1:644I) when
// set, else loadbalancer_apiserver's address and port, else the first
// control plane's ansible_host on APIServerPort. Its host is one of the
// kube-apiserver certificate's SANs.
func (p *Params) AdminServer() string {
	switch {
	case p.AdminAPIAddress != "":
		return p.AdminAPIAddress
	case p.LoadBalancer != nil:
		return net.JoinHostPort(p.LoadBalancer.Address, strconv.Itoa(p.LoadBalancer.Port))
	}
	return net.JoinHostPort(p.controlPlane[0].SSH.Host, strconv.Itoa(APIServerPort))
}

// ServiceDNS is the cluster DNS Service's address: the 10th address of
// kube_service_addresses ("10.233.0.10"), as kubeadm's
// constants.GetDNSIP computes it for the kube-dns Service and the
// kubelets' clusterDNS. (Kubespray's own CoreDNS uses the 3rd; kubeadm's
// addon is used here.)
func (p *Params) ServiceDNS() string {
	prefix := netip.MustParsePrefix(p.ServiceAddresses)
	a := prefix.Masked().Addr()
	for i := 0; i < 10; i++ {
		a = a.Next()
	}
	return a.String()
}
