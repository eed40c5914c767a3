package network

import (
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// Names of kube-network-policies' objects (its install.yaml's), in kube-system.
const (
	NetpolName      = "kube-network-policies"
	NetpolNamespace = "kube-system"
	netpolBinary    = "/bin/netpol" // in the image
	// netpolQueueID is the nfqueue number it sends packets to; upstream's
	// manifest moves it off the default 100.
	netpolQueueID = "98"
)

func netpolObjects(p Params) []runtime.Object {
	labels := map[string]string{"app": NetpolName, "k8s-app": NetpolName, "tier": "node"}
	return []runtime.Object{
		&corev1.ServiceAccount{
			TypeMeta:   typeMeta("v1", "ServiceAccount"),
			ObjectMeta: metav1.ObjectMeta{Name: NetpolName, Namespace: NetpolNamespace, Labels: labels},
		},
		&rbacv1.ClusterRole{
			TypeMeta:   typeMeta("rbac.authorization.k8s.io/v1", "ClusterRole"),
			ObjectMeta: metav1.ObjectMeta{Name: NetpolName, Labels: labels},
			// v0.8.0 cmd/main.go with default flags: informers on pods,
			// namespaces and networkpolicies only (nodes and the
			// AdminNetworkPolicy kinds only behind --admin-network-policy /
			// --baseline-admin-network-policy).
			Rules: []rbacv1.PolicyRule{
				{APIGroups: []string{""}, Resources: []string{"pods", "namespaces"}, Verbs: []string{"list", "watch"}},
				{APIGroups: []string{"networking.k8s.io"}, Resources: []string{"networkpolicies"}, Verbs: []string{"list", "watch"}},
			},
		},
		clusterRoleBinding(NetpolName, NetpolNamespace, labels),
		netpolDaemonSet(p, labels),
	}
}

// netpolDaemonSet runs the nftables/nfqueue policy controller on every node.
// It reads pod IPs from containerd through NRI (/var/run/nri/nri.sock, and the
// pods' network namespaces under /var/run/netns) to avoid waiting for the
// API, and falls back to the API when NRI is not there.
func netpolDaemonSet(p Params, labels map[string]string) *appsv1.DaemonSet {
	c := corev1.Container{
		Name:            NetpolName,
		Image:           p.NetpolImage,
		ImagePullPolicy: corev1.PullPolicy(p.pullPolicy()),
		Command:         []string{netpolBinary},
		Args: []string{
			"--hostname-override=$(NODE_NAME)", // the node name, not the host's name
			"--nfqueue-id=" + netpolQueueID,
			"--v=2",
		},
		Env:       []corev1.EnvVar{fieldEnv("NODE_NAME", "spec.nodeName")},
		Resources: requests("100m", "50Mi"),
		SecurityContext: &corev1.SecurityContext{
			Privileged:   ptr(true), // as upstream: nfqueue, nftables and the pods' netns
			Capabilities: &corev1.Capabilities{Add: []corev1.Capability{"NET_ADMIN"}},
		},
		VolumeMounts: []corev1.VolumeMount{
			{Name: "nri-plugin", MountPath: "/var/run/nri"},
			{Name: "netns", MountPath: "/var/run/netns", MountPropagation: ptr(corev1.MountPropagationHostToContainer)},
			{Name: "lib-modules", MountPath: "/lib/modules", ReadOnly: true},
		},
	}
	vols := []corev1.Volume{
		hostPathVolume("nri-plugin", "/var/run/nri", corev1.HostPathDirectoryOrCreate),
		hostPathVolume("netns", "/var/run/netns", corev1.HostPathDirectoryOrCreate),
		hostPathVolume("lib-modules", "/lib/modules", corev1.HostPathDirectory),
	}
	return nodeDaemonSet(NetpolName, NetpolNamespace, NetpolName, labels, c, vols)
}
