package cluster

import (
	"github.com/metalk8s/metalk8s/pkg/inventory"
	"github.com/metalk8s/metalk8s/pkg/kubeadm"
)

// VerifyParams are what `metalk8s verify` needs of the inventory beyond
// its hosts: the test pods' image (agnhost, which every bundle of the
// inventory's kube_version holds) and the cluster's DNS domain
// (dns_domain, else cluster_name, else cluster.local: kubespray's).
// Errors: the inventory's variables, as up reports them.
func VerifyParams(cl *inventory.Cluster) (testImage, dnsDomain string, err error) {
	p, err := kubeadm.ParamsFrom(cl, true)
	if err != nil {
		return "", "", err
	}
	return p.Versions().AddonImages().Agnhost, p.DNSDomain, nil
}
