package kubeadm

// The cluster-wide settings of kubeadm's configuration, from the inventory.

import (
	"fmt"
	"net"
	"net/netip"
	"path"
	"regexp"
	"strconv"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/metalk8s/metalk8s/pkg/bundle"
	"github.com/metalk8s/metalk8s/pkg/inventory"
	"github.com/metalk8s/metalk8s/pkg/pki"
)

// APIServerPort is the port every kube-apiserver binds to (kubespray's
// kube_apiserver_port, kubeadm's default bindPort).
const APIServerPort = 6443

// Kubespray's defaults for the variables Params reads
// (roles/kubespray-defaults/defaults/main/main.yml), except
// kube_network_plugin: kubespray defaults to calico, metalk8s to flannel.
const (
	DefaultPodsSubnet       = "10.233.64.0/18"
	DefaultServiceAddresses = "10.233.0.0/18"
	DefaultClusterName      = "cluster.local"
	DefaultProxyMode        = "ipvs"
	DefaultNetworkPlugin    = "flannel"
	DefaultEndpointName     = "lb-apiserver.kubernetes.local"
)

// ProxyModes are the kube_proxy_mode values accepted, the default first.
// IPVS is deprecated upstream since 1.35 but still the default here, as in
// kubespray and MetalK8s.
var ProxyModes = []string{"ipvs", "nftables", "iptables"}

// NetworkPlugins are the kube_network_plugin values accepted.
var NetworkPlugins = []string{"flannel"}

// LoadBalancer is kubespray's loadbalancer_apiserver: an external balancer
// in front of every kube-apiserver. The endpoint name
// (apiserver_loadbalancer_domain_name) resolves to Address on every node.
type LoadBalancer struct {
	Address string // an IP or a DNS name
	Port    int    // default APIServerPort
}

// Params are the cluster-wide settings of the kubeadm configuration, read
// from the inventory by ParamsFrom. Subnets are CIDRs ("10.233.64.0/18").
type Params struct {
	KubeVersion      string // kube_version, "v1.36.3"
	PodsSubnet       string // kube_pods_subnet
	ServiceAddresses string // kube_service_addresses
	ClusterName      string // cluster_name: kubeadm's clusterName, as kubespray sets it
	DNSDomain        string // dns_domain, default cluster_name (kubespray)
	ProxyMode        string // kube_proxy_mode: one of ProxyModes
	// ProxySyncPeriod and ProxyMinSyncPeriod are kubespray's
	// kube_proxy_sync_period and kube_proxy_min_sync_period: how often
	// kube-proxy resyncs all its rules, and the least time between two
	// syncs. Zero leaves kube-proxy's defaults (30 s and 1 s; kubespray
	// writes 30s and 0s).
	ProxySyncPeriod, ProxyMinSyncPeriod time.Duration
	NetworkPlugin                       string // kube_network_plugin: one of NetworkPlugins
	// APIServerRequestTimeout is kubespray's kube_apiserver_request_timeout,
	// kube-apiserver's --request-timeout: how long it lets a read or list
	// run before answering 504 (it caps each create, update, patch and
	// delete at 34 s whatever this says: k8s.io/apiserver's
	// requestTimeoutUpperBound). Whole seconds; zero leaves the
	// apiserver's default (1 m, kubespray's too).
	APIServerRequestTimeout time.Duration
	// FlannelIPTablesResync is flannel_iptables_resync, flanneld's
	// --iptables-resync: how often it checks that its iptables rules are
	// still there (each check runs iptables a dozen times). Whole seconds;
	// zero leaves flannel's default (5 s). Not used with nftables.
	FlannelIPTablesResync time.Duration
	// EndpointName is the control-plane endpoint's name
	// (apiserver_loadbalancer_domain_name); /etc/hosts maps it on each node.
	EndpointName string
	LoadBalancer *LoadBalancer // loadbalancer_apiserver; nil without one
	// SupplementarySANs are supplementary_addresses_in_ssl_keys: extra
	// names and IPs in the kube-apiserver's certificate.
	SupplementarySANs []string
	// AdminAPIAddress is metalk8s_admin_api_address ("host:port"), empty
	// when unset; see AdminServer.
	AdminAPIAddress string
	Bundled         bool // images come from the bundle: imagePullPolicy Never
	// EncryptionAlgorithm is kubespray's kube_asymmetric_encryption_algorithm
	// (default "RSA-2048", kubeadm's): kubeadm's encryptionAlgorithm, the
	// key type of the certificates kubeadm makes and of new CAs and sa.key.
	EncryptionAlgorithm pki.Algorithm
	// IgnorePreflightErrors are kubespray's kubeadm_ignore_preflight_errors:
	// kubeadm preflight checks reported as warnings ("NumCPU", "all").
	IgnorePreflightErrors []string
	// Patches are kubespray's kubeadm_patches, written in PatchesDir
	// (kubeadm_patches_dir, default DefaultPatchesDir) on every node.
	Patches    []Patch
	PatchesDir string

	versions     bundle.Versions
	controlPlane []*inventory.Node
	etcd         []*inventory.Node
}

// ParamsFrom reads the cluster-wide variables from the first control-plane
// node's Vars (they are cluster-wide, as for metalk8s_bundle) and checks
// them. bundled says whether the images come from a bundle. A bad value is
// an error naming the host, the variable, the value and where it was set.
func ParamsFrom(cl *inventory.Cluster, bundled bool) (*Params, error) {
	if len(cl.ControlPlane) == 0 {
		return nil, fmt.Errorf("kubeadm: the cluster has no control-plane node")
	}
	r := reader{n: cl.ControlPlane[0]}
	p := &Params{Bundled: bundled, controlPlane: cl.ControlPlane, etcd: cl.Etcd}

	p.KubeVersion = r.str("kube_version", bundle.DefaultKubeVersion)
	if r.err == nil {
		p.KubeVersion, p.versions = r.kubeVersion(p.KubeVersion)
	}
	p.PodsSubnet = r.subnet("kube_pods_subnet", DefaultPodsSubnet)
	p.ServiceAddresses = r.subnet("kube_service_addresses", DefaultServiceAddresses)
	p.ClusterName = r.dnsName("cluster_name", DefaultClusterName)
	p.DNSDomain = r.dnsName("dns_domain", p.ClusterName)
	p.ProxyMode = r.oneOf("kube_proxy_mode", DefaultProxyMode, ProxyModes)
	p.ProxySyncPeriod = r.duration("kube_proxy_sync_period")
	p.ProxyMinSyncPeriod = r.duration("kube_proxy_min_sync_period")
	if r.err == nil && p.ProxySyncPeriod > 0 && p.ProxyMinSyncPeriod > p.ProxySyncPeriod {
		r.fail("kube_proxy_min_sync_period", "%v is longer than kube_proxy_sync_period (%v)", p.ProxyMinSyncPeriod, p.ProxySyncPeriod)
	}
	p.NetworkPlugin = r.oneOf("kube_network_plugin", DefaultNetworkPlugin, NetworkPlugins)
	p.APIServerRequestTimeout = r.duration("kube_apiserver_request_timeout")
	if d := p.APIServerRequestTimeout; r.err == nil && d%time.Second != 0 {
		r.fail("kube_apiserver_request_timeout", "%v is not a whole number of seconds", d)
	}
	p.FlannelIPTablesResync = r.duration("flannel_iptables_resync")
	if d := p.FlannelIPTablesResync; r.err == nil && d%time.Second != 0 {
		r.fail("flannel_iptables_resync", "%v is not a whole number of seconds", d)
	}
	p.EndpointName = r.dnsName("apiserver_loadbalancer_domain_name", DefaultEndpointName)
	p.LoadBalancer = r.loadBalancer("loadbalancer_apiserver")
	p.SupplementarySANs = r.sans("supplementary_addresses_in_ssl_keys")
	p.AdminAPIAddress = r.hostPort("metalk8s_admin_api_address")
	var algs []string
	for _, a := range pki.Algorithms {
		algs = append(algs, string(a))
	}
	p.EncryptionAlgorithm = pki.Algorithm(r.oneOf("kube_asymmetric_encryption_algorithm", string(pki.RSA2048), algs))
	p.IgnorePreflightErrors = r.words("kubeadm_ignore_preflight_errors")
	p.Patches = r.patches("kubeadm_patches")
	p.PatchesDir = r.str("kubeadm_patches_dir", DefaultPatchesDir)
	if r.err == nil && !path.IsAbs(p.PatchesDir) {
		r.fail("kubeadm_patches_dir", "must be an absolute path, found %q", p.PatchesDir)
	}
	if r.err != nil {
		return nil, r.err
	}
	if err := checkSubnets(r.n, p.PodsSubnet, p.ServiceAddresses); err != nil {
		return nil, err
	}
	return p, nil
}

// checkSubnets refuses overlapping pod and service subnets, a pod subnet
// smaller than one node's share (the controller manager's default
// node-cidr-mask-size: /24 for IPv4, /64 for IPv6), and a service subnet
// without a 10th address for the DNS Service or larger than kubeadm allows
// (20 host bits, constants.MaximumBitsForServiceSubnet).
func checkSubnets(n *inventory.Node, pods, services string) error {
	pp, sp := netip.MustParsePrefix(pods), netip.MustParsePrefix(services)
	if pp.Overlaps(sp) {
		return fmt.Errorf("host %s: kube_pods_subnet %s and kube_service_addresses %s overlap", n.Name, pods, services)
	}
	nodeMask := 24
	if pp.Addr().Is6() {
		nodeMask = 64
	}
	if pp.Bits() > nodeMask {
		return fmt.Errorf("host %s: variable kube_pods_subnet: %s is smaller than one node's /%d", n.Name, pods, nodeMask)
	}
	if host := sp.Addr().BitLen() - sp.Bits(); host < 4 || host > 20 {
		return fmt.Errorf("host %s: variable kube_service_addresses: %s has %d host bits; want 4 to 20", n.Name, services, host)
	}
	return nil
}

// reader reads variables of one node, keeping the first error.
type reader struct {
	n   *inventory.Node
	err error
}

func (r *reader) fail(key string, format string, args ...any) {
	if r.err != nil {
		return
	}
	msg := fmt.Sprintf("host %s: variable %s: %s", r.n.Name, key, fmt.Sprintf(format, args...))
	if src := r.n.Source[key]; src != "" {
		msg += " (set in " + src + ")"
	}
	r.err = fmt.Errorf("%s", msg)
}

// str reads a string variable; unset or null gives def.
func (r *reader) str(key, def string) string {
	v, ok := r.n.Vars[key]
	if !ok || v == nil {
		return def
	}
	if u, ok := v.(inventory.Unsafe); ok {
		v = string(u)
	}
	s, ok := v.(string)
	if !ok {
		r.fail(key, "must be a string, found %v", v)
		return def
	}
	s = strings.TrimSpace(s)
	if strings.Contains(s, "{{") || strings.Contains(s, "{%") {
		r.fail(key, "Jinja templates are not supported: %q", s)
	}
	if s == "" {
		return def
	}
	return s
}

var semver = regexp.MustCompile(`^v?[0-9]+\.[0-9]+\.[0-9]+$`)

// kubeVersion normalizes "1.36.3" to "v1.36.3" and looks its components up
// in the bundle's version table.
func (r *reader) kubeVersion(s string) (string, bundle.Versions) {
	if !semver.MatchString(s) {
		r.fail("kube_version", "%q is not a version like v1.36.3", s)
		return s, bundle.Versions{}
	}
	s = "v" + strings.TrimPrefix(s, "v")
	v, err := bundle.VersionsFor(s)
	if err != nil {
		r.fail("kube_version", "%v", err)
	}
	return s, v
}

// duration reads a Go duration ("30s", "1m", "2h22m", as kubespray writes
// them); unset gives 0, and so does "0s". Negative durations are refused.
func (r *reader) duration(key string) time.Duration {
	s := r.str(key, "")
	if s == "" {
		return 0
	}
	d, err := time.ParseDuration(s)
	switch {
	case err != nil:
		r.fail(key, "%q is not a duration like 30s or 1m", s)
	case d < 0:
		r.fail(key, "%q is negative", s)
	}
	return d
}

// subnet reads one CIDR, in canonical form (no host bits set).
func (r *reader) subnet(key, def string) string {
	s := r.str(key, def)
	p, err := netip.ParsePrefix(s)
	switch {
	case strings.Contains(s, ","):
		r.fail(key, "%q: dual-stack subnets are not supported", s)
	case err != nil:
		r.fail(key, "%q is not a CIDR like %s", s, def)
	case p.Masked() != p:
		r.fail(key, "%q has host bits set; did you mean %s?", s, p.Masked())
	}
	return s
}

// dnsName reads a DNS subdomain (RFC 1123).
func (r *reader) dnsName(key, def string) string {
	s := r.str(key, def)
	if errs := validation.IsDNS1123Subdomain(s); len(errs) > 0 {
		r.fail(key, "%q is not a DNS name: %s", s, strings.Join(errs, "; "))
	}
	return s
}

func (r *reader) oneOf(key, def string, choices []string) string {
	s := r.str(key, def)
	for _, c := range choices {
		if s == c {
			return s
		}
	}
	if len(choices) == 1 {
		r.fail(key, "%q is not supported; metalk8s supports %s only", s, choices[0])
	} else {
		r.fail(key, "%q is not one of %s", s, strings.Join(choices, ", "))
	}
	return s
}

// loadBalancer reads kubespray's {address: ..., port: ...} mapping.
func (r *reader) loadBalancer(key string) *LoadBalancer {
	v, ok := r.n.Vars[key]
	if !ok || v == nil {
		return nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		r.fail(key, "must be a mapping like {address: 10.0.0.100, port: 6443}, found %v", v)
		return nil
	}
	lb := &LoadBalancer{Port: APIServerPort}
	for k, x := range m {
		switch k {
		case "address":
			s, _ := x.(string)
			if !isAddress(s) {
				r.fail(key, "address %v is not an IP address or a DNS name", x)
			}
			lb.Address = s
		case "port":
			n, ok := portNumber(x)
			if !ok {
				r.fail(key, "port %v is not a port number (1-65535)", x)
			}
			lb.Port = n
		default:
			r.fail(key, "unknown key %q; want address and port", k)
		}
	}
	if lb.Address == "" {
		r.fail(key, "no address")
	}
	return lb
}

// sans reads a list of IP addresses and DNS names (wildcards allowed, as
// in kubeadm's certSANs).
func (r *reader) sans(key string) []string {
	return r.list(key, "addresses and names", "an IP address or a DNS name", func(s string) bool {
		return isAddress(s) || len(validation.IsWildcardDNS1123Subdomain(s)) == 0
	})
}

// words reads a list of plain words (kubeadm check names).
func (r *reader) words(key string) []string {
	return r.list(key, "names", "a single name", func(s string) bool {
		return s != "" && !strings.ContainsAny(s, " \t\n,")
	})
}

// list reads a list of strings each valid says is one (of what, one);
// unset gives nil.
func (r *reader) list(key, what, one string, valid func(string) bool) []string {
	v, ok := r.n.Vars[key]
	if !ok || v == nil {
		return nil
	}
	list, ok := v.([]any)
	if !ok {
		r.fail(key, "must be a list of %s, found %v", what, v)
		return nil
	}
	var out []string
	for _, x := range list {
		s, _ := x.(string)
		if !valid(s) {
			r.fail(key, "%v is not %s", x, one)
			continue
		}
		out = append(out, s)
	}
	return out
}

// hostPort reads "host:port"; unset gives "".
func (r *reader) hostPort(key string) string {
	s := r.str(key, "")
	if s == "" {
		return ""
	}
	host, port, err := net.SplitHostPort(s)
	if _, ok := portNumber(port); err != nil || !ok || !isAddress(host) {
		r.fail(key, "%q is not host:port, like 127.0.0.1:6443", s)
	}
	return s
}

func isAddress(s string) bool {
	if _, err := netip.ParseAddr(s); err == nil {
		return true
	}
	return s != "" && len(validation.IsDNS1123Subdomain(s)) == 0
}

func portNumber(x any) (int, bool) {
	var n int
	switch v := x.(type) {
	case int64:
		n = int(v)
	case int:
		n = v
	case string:
		var err error
		if n, err = strconv.Atoi(v); err != nil {
			return 0, false
		}
	default:
		return 0, false
	}
	return n, n >= 1 && n <= 65535
}
