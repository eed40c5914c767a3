package network

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// Names of flannel's objects, as upstream's kube-flannel.yml names them.
const (
	FlannelNamespace = "kube-flannel"
	FlannelName      = "flannel"          // ServiceAccount, ClusterRole(Binding)
	FlannelConfigMap = "kube-flannel-cfg" // holds net-conf.json
	FlannelDaemonSet = "kube-flannel-ds"
	flannelBinary    = "/opt/bin/flanneld" // in the image
	// NetConfHashAnnotation on flannel's pod template: SHA-256 of net-conf.json.
	NetConfHashAnnotation = "metalk8s.io/net-conf-sha256"
)

// NetConf is flannel's net-conf.json (flannel pkg/subnet config.go), the
// fields metalk8s sets.
type NetConf struct {
	Network        string      `json:"Network"`        // the pod network, kube_pods_subnet
	EnableNFTables bool        `json:"EnableNFTables"` // nftables instead of iptables rules
	Backend        BackendConf `json:"Backend"`
}

// BackendConf selects flannel's backend; metalk8s uses only "vxlan", with
// flannel's defaults (VNI 1, UDP port 8472, MTU of the interface minus 50).
type BackendConf struct {
	Type string `json:"Type"`
}

// FlannelNetConf returns net-conf.json for the pod network: VXLAN over
// p.PodSubnet. The error names a bad PodSubnet.
func FlannelNetConf(p Params) ([]byte, error) {
	if _, err := ipv4Prefix("kube_pods_subnet", p.PodSubnet); err != nil {
		return nil, err
	}
	b, err := json.MarshalIndent(NetConf{Network: p.PodSubnet, EnableNFTables: p.EnableNFTables, Backend: BackendConf{Type: "vxlan"}}, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("net-conf.json: %w", err)
	}
	return append(b, '\n'), nil
}

func flannelObjects(p Params) ([]runtime.Object, error) {
	conf, err := FlannelNetConf(p)
	if err != nil {
		return nil, err
	}
	labels := map[string]string{"app": "flannel", "tier": "node"}
	meta := metav1.ObjectMeta{Name: FlannelName, Namespace: FlannelNamespace, Labels: labels}
	return []runtime.Object{
		&corev1.Namespace{
			TypeMeta: typeMeta("v1", "Namespace"),
			ObjectMeta: metav1.ObjectMeta{Name: FlannelNamespace, Labels: map[string]string{
				// hostNetwork and NET_ADMIN need the privileged Pod Security level
				"pod-security.kubernetes.io/enforce": "privileged",
			}},
		},
		&corev1.ServiceAccount{TypeMeta: typeMeta("v1", "ServiceAccount"), ObjectMeta: meta},
		&rbacv1.ClusterRole{
			TypeMeta:   typeMeta("rbac.authorization.k8s.io/v1", "ClusterRole"),
			ObjectMeta: metav1.ObjectMeta{Name: FlannelName, Labels: labels},
			// flannel pkg/subnet/kube: a node informer (list, watch), Get of
			// its own node, and status patches for its annotations and the
			// NetworkUnavailable condition. No pods: NODE_NAME is set, so it
			// never looks its pod up.
			Rules: []rbacv1.PolicyRule{
				{APIGroups: []string{""}, Resources: []string{"nodes"}, Verbs: []string{"get", "list", "watch"}},
				{APIGroups: []string{""}, Resources: []string{"nodes/status"}, Verbs: []string{"patch"}},
			},
		},
		clusterRoleBinding(FlannelName, FlannelNamespace, labels),
		&corev1.ConfigMap{
			TypeMeta:   typeMeta("v1", "ConfigMap"),
			ObjectMeta: metav1.ObjectMeta{Name: FlannelConfigMap, Namespace: FlannelNamespace, Labels: labels},
			Data:       map[string]string{"net-conf.json": string(conf)},
		},
		flannelDaemonSet(p, labels, conf),
	}, nil
}

// flannelArgs are flanneld's flags.
func flannelArgs(p Params) []string {
	args := []string{"--ip-masq", "--kube-subnet-mgr", "--iface=$(NODE_IP)"}
	if s := int(p.IPTablesResync / time.Second); s > 0 && !p.EnableNFTables {
		args = append(args, fmt.Sprintf("--iptables-resync=%d", s))
	}
	return args
}

// flannelDaemonSet runs flanneld on every node. --iface=$(NODE_IP) makes
// VXLAN use the interface of the kubelet's node IP (status.hostIP), not the
// default route's, which on the lab's VMs is the NAT interface. The pod
// template carries the hash of net-conf.json, so that a change of it rolls
// the pods (flanneld reads it only at start).
func flannelDaemonSet(p Params, labels map[string]string, netConf []byte) *appsv1.DaemonSet {
	c := corev1.Container{
		Name:            "kube-flannel",
		Image:           p.FlannelImage,
		ImagePullPolicy: corev1.PullPolicy(p.pullPolicy()),
		Command:         []string{flannelBinary},
		Args:            flannelArgs(p),
		Env: []corev1.EnvVar{
			fieldEnv("POD_NAME", "metadata.name"),
			fieldEnv("POD_NAMESPACE", "metadata.namespace"),
			fieldEnv("NODE_NAME", "spec.nodeName"),
			fieldEnv("NODE_IP", "status.hostIP"),
		},
		Resources: requests("100m", "50Mi"),
		SecurityContext: &corev1.SecurityContext{
			Privileged:   ptr(false),
			Capabilities: &corev1.Capabilities{Add: []corev1.Capability{"NET_ADMIN", "NET_RAW"}},
		},
		VolumeMounts: []corev1.VolumeMount{
			{Name: "run", MountPath: "/run/flannel"},
			{Name: "flannel-cfg", MountPath: "/etc/kube-flannel/"},
			{Name: "xtables-lock", MountPath: "/run/xtables.lock"},
			{Name: "lib-modules", MountPath: "/lib/modules", ReadOnly: true},
		},
	}
	vols := []corev1.Volume{
		hostPathVolume("run", "/run/flannel", corev1.HostPathDirectoryOrCreate),
		{Name: "flannel-cfg", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
			LocalObjectReference: corev1.LocalObjectReference{Name: FlannelConfigMap},
		}}},
		hostPathVolume("xtables-lock", "/run/xtables.lock", corev1.HostPathFileOrCreate),
		hostPathVolume("lib-modules", "/lib/modules", corev1.HostPathDirectory),
	}
	ds := nodeDaemonSet(FlannelDaemonSet, FlannelNamespace, FlannelName, labels, c, vols)
	sum := sha256.Sum256(netConf)
	ds.Spec.Template.Annotations = map[string]string{NetConfHashAnnotation: hex.EncodeToString(sum[:])}
	return ds
}
