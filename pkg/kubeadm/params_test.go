package kubeadm

import (
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"k8s.io/kubernetes/cmd/kubeadm/app/apis/kubeadm/v1beta4"
	kubeadmconstants "k8s.io/kubernetes/cmd/kubeadm/app/constants"

	"github.com/metalk8s/metalk8s/internal/testinv"
	"github.com/metalk8s/metalk8s/pkg/bundle"
	"github.com/metalk8s/metalk8s/pkg/inventory"
)

const testHosts = `[kube-master]
cp1 ansible_host=192.168.1.11 ip=10.0.0.11
cp2 ansible_host=192.168.1.12
[etcd]
cp1
[kube-node]
w1 ansible_host=192.168.1.21
[k8s-cluster:children]
kube-master
kube-node
`

// clusterWith loads testHosts with vars as group_vars/all.yml (YAML).
func clusterWith(t *testing.T, vars string) *inventory.Cluster {
	t.Helper()
	return testinv.Cluster(t, testHosts, map[string]string{"group_vars/all.yml": "---\n" + vars + "\n"})
}

func TestParamsFromDefaults(t *testing.T) {
	p, err := ParamsFrom(clusterWith(t, ""), false)
	if err != nil {
		t.Fatal(err)
	}
	want := Params{
		KubeVersion: bundle.DefaultKubeVersion, PodsSubnet: "10.233.64.0/18", ServiceAddresses: "10.233.0.0/18",
		ClusterName: "cluster.local", DNSDomain: "cluster.local", ProxyMode: "ipvs", NetworkPlugin: "flannel",
		EndpointName: "lb-apiserver.kubernetes.local", PatchesDir: "/etc/kubernetes/patches", EncryptionAlgorithm: "RSA-2048",
	}
	got := *p
	got.versions, got.controlPlane, got.etcd = bundle.Versions{}, nil, nil
	if !reflect.DeepEqual(got, want) {
		t.Errorf("defaults:\n got %+v\nwant %+v", got, want)
	}
	if v, _ := bundle.VersionsFor(bundle.DefaultKubeVersion); p.Versions() != v {
		t.Errorf("Versions() = %+v, want %+v", p.Versions(), v)
	}
	if h, port := p.Endpoint(); h != "lb-apiserver.kubernetes.local" || port != 6443 {
		t.Errorf("Endpoint() = %s, %d", h, port)
	}
	if s := p.AdminServer(); s != "192.168.1.11:6443" {
		t.Errorf("AdminServer() = %s, want the first control plane's ansible_host", s)
	}
}

func TestParamsFrom(t *testing.T) {
	for _, tc := range []struct {
		vars  string
		check func(p *Params) bool
	}{
		{"kube_version: 1.35.4", func(p *Params) bool { return p.KubeVersion == "v1.35.4" && p.Versions().Kube == "v1.35.4" }},
		{"kube_version: v1.37.2", func(p *Params) bool { return p.KubeVersion == "v1.37.2" }},
		{"kube_pods_subnet: 10.244.0.0/16", func(p *Params) bool { return p.PodsSubnet == "10.244.0.0/16" }},
		{"kube_service_addresses: 10.96.0.0/12", func(p *Params) bool {
			return p.ServiceAddresses == "10.96.0.0/12" && p.ServiceDNS() == "10.96.0.10"
		}},
		{"kube_service_addresses: fd00:10:96::/112\nkube_pods_subnet: fd00:10:244::/56", func(p *Params) bool { return p.ServiceDNS() == "fd00:10:96::a" }},
		{"cluster_name: k8s.example.com", func(p *Params) bool { return p.ClusterName == "k8s.example.com" && p.DNSDomain == "k8s.example.com" }},
		{"cluster_name: prod\ndns_domain: prod.local", func(p *Params) bool { return p.ClusterName == "prod" && p.DNSDomain == "prod.local" }},
		{"kube_proxy_mode: nftables", func(p *Params) bool { return p.ProxyMode == "nftables" }},
		{"flannel_iptables_resync: 5m", func(p *Params) bool { return p.FlannelIPTablesResync == 5*time.Minute }},
		{"kube_apiserver_request_timeout: 2m", func(p *Params) bool {
			return p.APIServerRequestTimeout == 2*time.Minute &&
				slices.Contains(p.apiServerArgs(), v1beta4.Arg{Name: "request-timeout", Value: "2m0s"})
		}},
		{"kube_proxy_mode: iptables", func(p *Params) bool {
			return p.APIServerRequestTimeout == 0 && !slices.ContainsFunc(p.apiServerArgs(), func(a v1beta4.Arg) bool { return a.Name == "request-timeout" })
		}},
		{"kube_proxy_mode: iptables", func(p *Params) bool { return p.ProxyMode == "iptables" }},
		{"kube_proxy_sync_period: 5m\nkube_proxy_min_sync_period: 0s", func(p *Params) bool {
			return p.ProxySyncPeriod == 5*time.Minute && p.ProxyMinSyncPeriod == 0
		}},
		{"kube_asymmetric_encryption_algorithm: ECDSA-P256", func(p *Params) bool {
			return p.EncryptionAlgorithm == "ECDSA-P256" && p.clusterConfiguration().EncryptionAlgorithm == "ECDSA-P256"
		}},
		{"kube_network_plugin: flannel", func(p *Params) bool { return p.NetworkPlugin == "flannel" }},
		{"apiserver_loadbalancer_domain_name: api.example.com", func(p *Params) bool {
			h, port := p.Endpoint()
			return h == "api.example.com" && port == 6443
		}},
		{"loadbalancer_apiserver: {address: 10.0.0.100, port: 8383}", func(p *Params) bool {
			h, port := p.Endpoint()
			return *p.LoadBalancer == LoadBalancer{"10.0.0.100", 8383} && h == DefaultEndpointName && port == 8383 &&
				p.AdminServer() == "10.0.0.100:8383"
		}},
		{"loadbalancer_apiserver: {address: lb.example.com}", func(p *Params) bool { return *p.LoadBalancer == LoadBalancer{"lb.example.com", 6443} }},
		{"supplementary_addresses_in_ssl_keys: [api.example.com, 192.0.2.1, '*.apps.example.com']", func(p *Params) bool {
			return reflect.DeepEqual(p.SupplementarySANs, []string{"api.example.com", "192.0.2.1", "*.apps.example.com"})
		}},
		{"metalk8s_admin_api_address: 127.0.0.1:6441", func(p *Params) bool { return p.AdminServer() == "127.0.0.1:6441" }},
		{"kubeadm_ignore_preflight_errors: [NumCPU, Mem]", func(p *Params) bool {
			return reflect.DeepEqual(p.IgnorePreflightErrors, []string{"NumCPU", "Mem"})
		}},
		{"metalk8s_admin_api_address: '[fd00::1]:6443'", func(p *Params) bool { return p.AdminServer() == "[fd00::1]:6443" }},
	} {
		t.Run(tc.vars, func(t *testing.T) {
			p, err := ParamsFrom(clusterWith(t, tc.vars), false)
			if err != nil {
				t.Fatal(err)
			}
			if !tc.check(p) {
				t.Errorf("%+v", *p)
			}
		})
	}
}

func TestParamsFromErrors(t *testing.T) {
	for _, tc := range []struct {
		vars string
		want []string // in the error, besides "host cp1" and group_vars/all.yml
	}{
		{"kube_version: v1.34.4", []string{"variable kube_version", "v1.34.4", "v1.35", "v1.37"}},
		{"kube_version: latest", []string{"variable kube_version", `"latest"`, "v1.36.3"}},
		{"kube_version: [1]", []string{"variable kube_version", "must be a string"}},
		{"kube_pods_subnet: 10.233.64.0", []string{"variable kube_pods_subnet", `"10.233.64.0"`, "not a CIDR"}},
		{"kube_pods_subnet: 10.233.64.1/18", []string{"variable kube_pods_subnet", "host bits", "10.233.64.0/18"}},
		{"kube_pods_subnet: 10.233.64.0/25", []string{"kube_pods_subnet", "smaller than one node's /24"}},
		{"kube_pods_subnet: 10.0.0.0/8,fd00::/56", []string{"kube_pods_subnet", "dual-stack"}},
		{"kube_service_addresses: 11.0.0.0/8", []string{"kube_service_addresses", "11.0.0.0/8", "4 to 20"}},
		{"kube_service_addresses: 10.233.64.0/24", []string{"kube_pods_subnet", "kube_service_addresses", "overlap"}},
		{"cluster_name: Cluster_Local", []string{"variable cluster_name", `"Cluster_Local"`, "DNS name"}},
		{"kube_proxy_mode: userspace", []string{"variable kube_proxy_mode", `"userspace"`, "ipvs, nftables, iptables"}},
		{"kube_proxy_sync_period: often", []string{"variable kube_proxy_sync_period", `"often"`, "duration"}},
		{"flannel_iptables_resync: 1500ms", []string{"variable flannel_iptables_resync", "whole number of seconds"}},
		{"kube_apiserver_request_timeout: 90500ms", []string{"variable kube_apiserver_request_timeout", "whole number of seconds"}},
		{"kube_apiserver_request_timeout: soon", []string{"variable kube_apiserver_request_timeout", "not a duration"}},
		{"kube_proxy_sync_period: -30s", []string{"variable kube_proxy_sync_period", "negative"}},
		{"kube_proxy_sync_period: 10s\nkube_proxy_min_sync_period: 1m", []string{"variable kube_proxy_min_sync_period", "1m0s is longer than kube_proxy_sync_period (10s)"}},
		{"kube_asymmetric_encryption_algorithm: ECDSA-P521", []string{"variable kube_asymmetric_encryption_algorithm", `"ECDSA-P521"`, "ECDSA-P256, ECDSA-P384, RSA-2048"}},
		{"kube_network_plugin: calico", []string{"variable kube_network_plugin", `"calico"`, "flannel only"}},
		{"apiserver_loadbalancer_domain_name: 'bad name'", []string{"variable apiserver_loadbalancer_domain_name", `"bad name"`}},
		{"loadbalancer_apiserver: 10.0.0.100", []string{"variable loadbalancer_apiserver", "must be a mapping"}},
		{"loadbalancer_apiserver: {port: 8383}", []string{"variable loadbalancer_apiserver", "no address"}},
		{"loadbalancer_apiserver: {address: 10.0.0.100, port: 70000}", []string{"variable loadbalancer_apiserver", "port 70000"}},
		{"loadbalancer_apiserver: {address: 10.0.0.100, prot: 8383}", []string{"variable loadbalancer_apiserver", `unknown key "prot"`}},
		{"kubeadm_ignore_preflight_errors: NumCPU", []string{"variable kubeadm_ignore_preflight_errors", "must be a list"}},
		{"kubeadm_ignore_preflight_errors: ['NumCPU,Mem']", []string{"variable kubeadm_ignore_preflight_errors", "not a single name"}},
		{"supplementary_addresses_in_ssl_keys: api.example.com", []string{"variable supplementary_addresses_in_ssl_keys", "must be a list"}},
		{"supplementary_addresses_in_ssl_keys: ['bad name']", []string{"variable supplementary_addresses_in_ssl_keys", "bad name"}},
		{"metalk8s_admin_api_address: 127.0.0.1", []string{"variable metalk8s_admin_api_address", `"127.0.0.1"`, "host:port"}},
		{"kube_proxy_mode: '{{ mode }}'", []string{"variable kube_proxy_mode", "Jinja"}},
	} {
		t.Run(tc.vars, func(t *testing.T) {
			_, err := ParamsFrom(clusterWith(t, tc.vars), false)
			if err == nil {
				t.Fatal("no error")
			}
			want := append([]string{"host cp1"}, tc.want...)
			if strings.Contains(tc.want[0], "variable") {
				want = append(want, filepath.Join("group_vars", "all.yml"))
			}
			for _, w := range want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

// TestServiceDNS checks ServiceDNS against kubeadm's own computation.
func TestServiceDNS(t *testing.T) {
	for _, subnet := range []string{"10.233.0.0/18", "10.96.0.0/12", "172.16.0.0/28", "fd00:10:96::/112"} {
		p := &Params{ServiceAddresses: subnet}
		want, err := kubeadmconstants.GetDNSIP(subnet)
		if err != nil {
			t.Fatal(err)
		}
		if got := p.ServiceDNS(); got != want.String() {
			t.Errorf("ServiceDNS(%s) = %s, kubeadm says %s", subnet, got, want)
		}
	}
}
