package kubeadm

import (
	"fmt"
	"net"
	"slices"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	bootstraputil "k8s.io/cluster-bootstrap/token/util"
	kubeproxyv1alpha1 "k8s.io/kube-proxy/config/v1alpha1"
	kubeletv1beta1 "k8s.io/kubelet/config/v1beta1"
	bootstraptokenv1 "k8s.io/kubernetes/cmd/kubeadm/app/apis/bootstraptoken/v1"
	"k8s.io/kubernetes/cmd/kubeadm/app/apis/kubeadm/v1beta4"
	kubeadmconstants "k8s.io/kubernetes/cmd/kubeadm/app/constants"

	"github.com/metalk8s/metalk8s/pkg/inventory"
)

// timeouts are how long kubeadm waits for each thing: 2.5 to 15 times its
// defaults (4 min for the control plane's and kubelet's health, 1 min per
// API call, 2 min per etcd call, 5 min for discovery and TLS bootstrap).
// On the lab, init's first API call (the admin's ClusterRoleBinding) came
// after more than 5 minutes: the apiserver's bootstrap roles go through a
// three-member etcd on emulated CPUs.
// They are limits, not delays: a fast machine is done as soon as ever, and
// a slow one (the lab's emulated CPUs, where an apiserver takes minutes to
// answer while its neighbours import images) is not failed half-way
// through an init that would have finished.
func timeouts() *v1beta4.Timeouts {
	d := func(m time.Duration) *metav1.Duration { return &metav1.Duration{Duration: m * time.Minute} }
	return &v1beta4.Timeouts{
		ControlPlaneComponentHealthCheck: d(20),
		KubeletHealthCheck:               d(10),
		KubernetesAPICall:                d(15),
		EtcdAPICall:                      d(5),
		TLSBootstrap:                     d(20),
		Discovery:                        d(20),
	}
}

// InitTokenTTL is how long the bootstrap token kubeadm init makes lives.
const InitTokenTTL = 10 * time.Minute

// Paths and settings on the nodes.
const (
	CRISocket       = "unix:///run/containerd/containerd.sock"
	ImageRepository = "registry.k8s.io"
	// The kube-apiserver's etcd client certificate (pkg/etcd's layout,
	// kubeadm's file names), and etcd's client port (IANA's, as pkg/etcd
	// serves it: components do not import each other).
	EtcdCAFile     = "/etc/kubernetes/pki/etcd/ca.crt"
	etcdClientPort = 2379
	EtcdCertFile   = "/etc/kubernetes/pki/apiserver-etcd-client.crt"
	EtcdKeyFile    = "/etc/kubernetes/pki/apiserver-etcd-client.key"
)

// leaderElection are the controller manager's and the scheduler's lease
// settings: 60s/45s/10s instead of 15s/10s/2s. Under CPU emulation (the
// lab's TCG VMs) lease renewals took more than 10 s while nodes joined and
// both components restarted with "leaderelection lost"; these values
// removed that (/work/shared/lab/kubeadm-vm/NOTES.txt, runs B against C/D).
// On real hardware they only slow a failover to another control plane
// down to about a minute.
var leaderElection = []v1beta4.Arg{
	{Name: "leader-elect-lease-duration", Value: "60s"},
	{Name: "leader-elect-renew-deadline", Value: "45s"},
	{Name: "leader-elect-retry-period", Value: "10s"},
}

// LocalEtcdServer is where an apiserver on an etcd member reaches etcd:
// its own member, on loopback (the member's server certificate names
// 127.0.0.1).
const LocalEtcdServer = "https://127.0.0.1:2379"

// apiServerArgs: --request-timeout when the inventory sets one; and when
// every control plane is also an etcd member (the
// seed's topology), each apiserver talks to its own member only, as in
// kubeadm's stacked etcd, instead of to all of them. etcd's client
// balances each of the apiserver's clients (about one per resource kind)
// over every endpoint it is given: with three members that was three TLS
// connections per resource and apiserver, a third of them to each member,
// and a member on a worker served the apiservers it did not run with. An
// apiserver whose member is down then fails its health checks, and
// clients go to another control plane. With a control plane outside the
// etcd group, every apiserver gets every member (kubespray's
// etcd_access_addresses).
func (p *Params) apiServerArgs() []v1beta4.Arg {
	var args []v1beta4.Arg
	if d := p.APIServerRequestTimeout; d > 0 {
		args = append(args, v1beta4.Arg{Name: "request-timeout", Value: d.String()})
	}
	for _, n := range p.controlPlane {
		if !n.Etcd {
			return args
		}
	}
	return append(args, v1beta4.Arg{Name: "etcd-servers", Value: LocalEtcdServer})
}

// InitConfig is the `kubeadm init --config` file of control-plane node n:
// InitConfiguration, ClusterConfiguration, KubeletConfiguration and
// KubeProxyConfiguration as multi-document YAML. etcd is external (the
// etcd group's members); the kube-proxy addon stays.
func (p *Params) InitConfig(n *inventory.Node) ([]byte, error) {
	if !n.ControlPlane {
		return nil, fmt.Errorf("kubeadm init config for host %s: not a control-plane host", n.Name)
	}
	init := &v1beta4.InitConfiguration{
		TypeMeta:         typeMeta("InitConfiguration"),
		NodeRegistration: p.nodeRegistration(n),
		LocalAPIEndpoint: localAPIEndpoint(n),
		// kubeadm init always makes a bootstrap token (24 h by default);
		// metalk8s makes its own per join, so init's lives 10 minutes.
		BootstrapTokens: []bootstraptokenv1.BootstrapToken{{
			Description: "kubeadm init's own token (metalk8s makes one per join)",
			TTL:         &metav1.Duration{Duration: InitTokenTTL},
		}},
		Timeouts: timeouts(),
		Patches:  p.patchesConfig(),
	}
	return marshalAll(init, p.clusterConfiguration(), p.kubeletConfiguration(), p.kubeProxyConfiguration())
}

// DiscoveryFile is where a joining node finds the cluster: a kubeconfig
// with the control-plane endpoint and the cluster CA and no credentials
// (DiscoveryConfig), written beside the join configuration and removed
// with it.
const DiscoveryFile = "/etc/kubernetes/metalk8s/discovery.conf"

// JoinConfig is the `kubeadm join --config` file of node n: a
// JoinConfiguration with file discovery (kubeadm's "file or https-based
// discovery", DiscoveryFile) and token the bootstrap token
// ("abcdef.0123456789abcdef") the kubelet's TLS bootstrap uses.
// metalk8s holds the cluster CA, so a join needs no cluster-info
// ConfigMap signed for its token: with token discovery, kubeadm waited
// for kube-controller-manager's bootstrap signer to sign it (2 min 20 s
// of a lab join). For a control plane (controlPlane true) it adds its
// local API endpoint and no certificateKey: the CAs are copied to the
// node beforehand, so kubeadm's uploaded-certs secret is not used.
func (p *Params) JoinConfig(n *inventory.Node, controlPlane bool, token string) ([]byte, error) {
	if controlPlane && !n.ControlPlane {
		return nil, fmt.Errorf("kubeadm join config for host %s: not a control-plane host", n.Name)
	}
	if !bootstraputil.IsValidBootstrapToken(token) {
		return nil, fmt.Errorf("kubeadm join config for host %s: the bootstrap token is not of the form [a-z0-9]{6}.[a-z0-9]{16}", n.Name)
	}
	join := &v1beta4.JoinConfiguration{
		TypeMeta:         typeMeta("JoinConfiguration"),
		NodeRegistration: p.nodeRegistration(n),
		Discovery: v1beta4.Discovery{
			File:              &v1beta4.FileDiscovery{KubeConfigPath: DiscoveryFile},
			TLSBootstrapToken: token,
		},
		Timeouts: timeouts(),
		Patches:  p.patchesConfig(),
	}
	if controlPlane {
		join.ControlPlane = &v1beta4.JoinControlPlane{LocalAPIEndpoint: localAPIEndpoint(n)}
	}
	return marshalAll(join)
}

// DiscoveryConfig is the kubeconfig a joining node discovers the cluster
// from (DiscoveryFile): one cluster, the control-plane endpoint
// (https://NAME:PORT) and caPEM (the cluster CA certificate, PEM), and a
// context with an empty user, which kubeadm's discovery requires
// (cmd/kubeadm/app/discovery/file). It errors when caPEM holds no
// certificate.
func (p *Params) DiscoveryConfig(caPEM []byte) ([]byte, error) {
	if _, err := pkiHash(caPEM); err != nil {
		return nil, fmt.Errorf("discovery kubeconfig: %w", err)
	}
	const name = "kubernetes"
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters[name] = &clientcmdapi.Cluster{Server: "https://" + p.controlPlaneEndpoint(), CertificateAuthorityData: caPEM}
	cfg.AuthInfos["tls-bootstrap"] = &clientcmdapi.AuthInfo{}
	cfg.Contexts[name] = &clientcmdapi.Context{Cluster: name, AuthInfo: "tls-bootstrap"}
	cfg.CurrentContext = name
	return clientcmd.Write(*cfg)
}

// patchesConfig points kubeadm at PatchesDir when there are patches.
func (p *Params) patchesConfig() *v1beta4.Patches {
	if len(p.Patches) == 0 {
		return nil
	}
	return &v1beta4.Patches{Directory: p.PatchesDir}
}

func typeMeta(kind string) metav1.TypeMeta {
	return metav1.TypeMeta{APIVersion: v1beta4.SchemeGroupVersion.String(), Kind: kind}
}

func localAPIEndpoint(n *inventory.Node) v1beta4.APIEndpoint {
	return v1beta4.APIEndpoint{AdvertiseAddress: n.Address(), BindPort: APIServerPort}
}

// nodeRegistration names the node after its inventory name and sets the
// kubelet's node IP. A control plane that is not also a worker keeps
// kubeadm's control-plane taint; every other node gets none (kubespray
// does the same for hosts in both groups).
func (p *Params) nodeRegistration(n *inventory.Node) v1beta4.NodeRegistrationOptions {
	nr := v1beta4.NodeRegistrationOptions{
		Name:             n.Name,
		CRISocket:        CRISocket,
		KubeletExtraArgs: []v1beta4.Arg{{Name: "node-ip", Value: n.Address()}},
		Taints:           []corev1.Taint{},
		// kubespray's kubeadm_ignore_preflight_errors
		IgnorePreflightErrors: p.IgnorePreflightErrors,
	}
	if n.ControlPlane && !n.Worker {
		nr.Taints = []corev1.Taint{{Key: kubeadmconstants.LabelNodeRoleControlPlane, Effect: corev1.TaintEffectNoSchedule}}
	}
	if p.Bundled {
		nr.ImagePullPolicy = corev1.PullNever
	}
	return nr
}

// clusterConfiguration: kubeadm itself adds allocate-node-cidrs and
// cluster-cidr (from podSubnet) to the controller manager, which flannel
// needs (phases/controlplane/manifests.go).
func (p *Params) clusterConfiguration() *v1beta4.ClusterConfiguration {
	var endpoints []string
	for _, n := range p.etcd {
		endpoints = append(endpoints, "https://"+net.JoinHostPort(n.Address(), strconv.Itoa(etcdClientPort)))
	}
	cc := &v1beta4.ClusterConfiguration{
		TypeMeta: typeMeta("ClusterConfiguration"),
		Etcd: v1beta4.Etcd{External: &v1beta4.ExternalEtcd{
			Endpoints: endpoints, CAFile: EtcdCAFile, CertFile: EtcdCertFile, KeyFile: EtcdKeyFile,
		}},
		Networking: v1beta4.Networking{
			ServiceSubnet: p.ServiceAddresses, PodSubnet: p.PodsSubnet, DNSDomain: p.DNSDomain,
		},
		KubernetesVersion:    p.KubeVersion,
		ControlPlaneEndpoint: p.controlPlaneEndpoint(),
		APIServer:            v1beta4.APIServer{CertSANs: p.certSANs(), ControlPlaneComponent: v1beta4.ControlPlaneComponent{ExtraArgs: p.apiServerArgs()}},
		ControllerManager:    v1beta4.ControlPlaneComponent{ExtraArgs: slices.Clone(leaderElection)},
		Scheduler:            v1beta4.ControlPlaneComponent{ExtraArgs: slices.Clone(leaderElection)},
		ImageRepository:      ImageRepository,
		ClusterName:          p.ClusterName,
		EncryptionAlgorithm:  v1beta4.EncryptionAlgorithmType(p.EncryptionAlgorithm),
	}
	cc.DNS.ImageTag = p.coreDNSTag()
	return cc
}

// coreDNSTag pins CoreDNS to the version table's tag only where kubeadm
// would pick another: kubeadm of the minor linked here picks
// constants.CoreDNSVersion; for other minors what their kubeadm picks is
// not known here, so the table's tag (the one the bundle carries) is set.
func (p *Params) coreDNSTag() string {
	want := p.versions.CoreDNS
	if want == "" || (sameMinor(p.KubeVersion, linkedKubeadm) && want == kubeadmconstants.CoreDNSVersion) {
		return ""
	}
	return want
}

// certSANs are the kube-apiserver certificate's extra names: each control
// plane's name, ip and ansible_host, the endpoint name, the balancer, the
// admin.conf host, 127.0.0.1, localhost and
// supplementary_addresses_in_ssl_keys; in that order, each once.
func (p *Params) certSANs() []string {
	var out []string
	seen := map[string]bool{}
	add := func(s string) {
		if s != "" && !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	for _, n := range p.controlPlane {
		add(n.Name)
		add(n.IP)
		add(n.SSH.Host)
	}
	add(p.EndpointName)
	if p.LoadBalancer != nil {
		add(p.LoadBalancer.Address)
	}
	if h, _, err := net.SplitHostPort(p.AdminServer()); err == nil {
		add(h)
	}
	add("127.0.0.1")
	add("localhost")
	for _, s := range p.SupplementarySANs {
		add(s)
	}
	return out
}

// kubeletConfiguration: the systemd cgroup driver (containerd is set up
// with SystemdCgroup) and the cluster DNS, the values kubeadm would
// derive from the networking section, written out so the file says them.
func (p *Params) kubeletConfiguration() *kubeletv1beta1.KubeletConfiguration {
	return &kubeletv1beta1.KubeletConfiguration{
		TypeMeta:      metav1.TypeMeta{APIVersion: kubeletv1beta1.SchemeGroupVersion.String(), Kind: "KubeletConfiguration"},
		CgroupDriver:  "systemd",
		ClusterDomain: p.DNSDomain,
		ClusterDNS:    []string{p.ServiceDNS()},
	}
}

// kubeProxyConfiguration: kube_proxy_mode, the sync periods, the pod subnet as clusterCIDR,
// and strictARP in IPVS mode (needed by ARP-answering load balancers such
// as MetalLB; kubespray's kube_proxy_strict_arp).
func (p *Params) kubeProxyConfiguration() *kubeproxyv1alpha1.KubeProxyConfiguration {
	kp := &kubeproxyv1alpha1.KubeProxyConfiguration{
		TypeMeta:    metav1.TypeMeta{APIVersion: kubeproxyv1alpha1.SchemeGroupVersion.String(), Kind: "KubeProxyConfiguration"},
		Mode:        kubeproxyv1alpha1.ProxyMode(p.ProxyMode),
		ClusterCIDR: p.PodsSubnet,
	}
	kp.IPVS.StrictARP = p.ProxyMode == "ipvs"
	// kubespray sets the sync periods for every mode from the same two
	// variables; kube-proxy reads the section of its mode.
	if d := p.ProxySyncPeriod; d > 0 {
		kp.IPTables.SyncPeriod, kp.IPVS.SyncPeriod, kp.NFTables.SyncPeriod = metav1.Duration{Duration: d}, metav1.Duration{Duration: d}, metav1.Duration{Duration: d}
	}
	if d := p.ProxyMinSyncPeriod; d > 0 {
		kp.IPTables.MinSyncPeriod, kp.IPVS.MinSyncPeriod, kp.NFTables.MinSyncPeriod = metav1.Duration{Duration: d}, metav1.Duration{Duration: d}, metav1.Duration{Duration: d}
	}
	return kp
}
