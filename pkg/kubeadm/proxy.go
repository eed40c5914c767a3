package kubeadm

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"
)

// The node-local API proxy of worker-only nodes: HAProxy as a static pod
// on 127.0.0.1:6443, health-checking every apiserver's /readyz, so a
// worker keeps reaching the API when any one control plane is down
// (kubespray's "localhost load balancing", MetalK8s 0.x's apiserver proxy).
const (
	ProxyConfigFile   = "/etc/kubernetes/apiserver-proxy/haproxy.cfg"
	ProxyManifestFile = "/etc/kubernetes/manifests/apiserver-proxy.yaml"
	// ProxyPort is where the proxy listens, on the worker's loopback.
	ProxyPort = 6443
)

// Backend is one apiserver the proxy balances to.
type Backend struct {
	Name, Address string
	Port          int
}

// ProxyConfig renders haproxy.cfg for the backends, in name order so the
// file only changes when the control planes do. TCP pass-through (the
// apiserver's TLS reaches the kubelet untouched); a backend is used only
// while GET /readyz over TLS answers 200, checked every 5 s.
func ProxyConfig(backends []Backend) ([]byte, error) {
	if len(backends) == 0 {
		return nil, fmt.Errorf("apiserver proxy: no control-plane backend")
	}
	bs := append([]Backend(nil), backends...)
	sort.Slice(bs, func(i, j int) bool { return bs[i].Name < bs[j].Name })
	var b strings.Builder
	fmt.Fprintf(&b, `# Written by metalk8s: the node-local proxy to the apiservers.
global
  log stdout format raw local0 notice
  maxconn 4000

defaults
  mode tcp
  log global
  option tcplog
  option dontlognull
  timeout connect 5s
  timeout client 24h
  timeout server 24h
  timeout check 5s

frontend apiserver
  bind 127.0.0.1:%d
  default_backend apiservers

backend apiservers
  option httpchk GET /readyz
  http-check expect status 200
  balance roundrobin
  default-server check check-ssl verify none inter 5s fall 3 rise 2
`, ProxyPort)
	for _, s := range bs {
		if strings.ContainsAny(s.Name+s.Address, " \t\n#") || s.Address == "" {
			return nil, fmt.Errorf("apiserver proxy: backend %q address %q not usable", s.Name, s.Address)
		}
		fmt.Fprintf(&b, "  server %s %s\n", s.Name, joinHostPort(s.Address, s.Port))
	}
	return []byte(b.String()), nil
}

// ProxyManifest is the static pod that runs HAProxy with the file above,
// hashed into an annotation so the kubelet restarts it when it changes.
func ProxyManifest(image string, pull corev1.PullPolicy, cfg []byte) ([]byte, error) {
	pod := corev1.Pod{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{
			Name: "apiserver-proxy", Namespace: "kube-system",
			Labels:      map[string]string{"app.kubernetes.io/name": "apiserver-proxy", "app.kubernetes.io/managed-by": "metalk8s"},
			Annotations: map[string]string{"metalk8s.io/config-sha256": sha256Hex(cfg)},
		},
		Spec: corev1.PodSpec{
			HostNetwork:       true,
			PriorityClassName: "system-node-critical",
			Containers: []corev1.Container{{
				Name: "haproxy", Image: image, ImagePullPolicy: pull,
				Command: []string{"haproxy", "-W", "-db", "-f", "/usr/local/etc/haproxy/haproxy.cfg"},
				LivenessProbe: &corev1.Probe{
					ProbeHandler:        corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Host: "127.0.0.1", Port: intstr.FromInt(ProxyPort)}},
					InitialDelaySeconds: 15, PeriodSeconds: 20, TimeoutSeconds: 5, FailureThreshold: 6,
				},
				VolumeMounts: []corev1.VolumeMount{{Name: "config", MountPath: "/usr/local/etc/haproxy", ReadOnly: true}},
			}},
			Volumes: []corev1.Volume{{Name: "config", VolumeSource: corev1.VolumeSource{
				HostPath: &corev1.HostPathVolumeSource{Path: "/etc/kubernetes/apiserver-proxy", Type: ptr(corev1.HostPathDirectory)},
			}}},
		},
	}
	return yaml.Marshal(pod)
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func ptr[T any](v T) *T { return &v }

func joinHostPort(host string, port int) string {
	if strings.Contains(host, ":") {
		return fmt.Sprintf("[%s]:%d", host, port)
	}
	return fmt.Sprintf("%s:%d", host, port)
}
