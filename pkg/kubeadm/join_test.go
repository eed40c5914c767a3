package kubeadm

import (
	"bytes"
	"errors"
	"testing"

	"k8s.io/client-go/tools/clientcmd"
	kubeconfigutil "k8s.io/kubernetes/cmd/kubeadm/app/util/kubeconfig"

	"github.com/metalk8s/metalk8s/pkg/pki"
)

func TestPreflightTimeout(t *testing.T) {
	for _, c := range []struct {
		name string
		err  string
		want bool
	}{
		// A worker's join on the lab while a control plane joined.
		{"component configs", `host node3: command "kubeadm join --config /etc/kubernetes/metalk8s/kubeadm.yaml --v=1" exited 1; stderr: …ving KubeConfig objects
I1201 06:31:02.933947    1430 kubeproxy.go:55] attempting to download the KubeProxyConfiguration from ConfigMap "kube-proxy"
error: error execution phase preflight: unable to fetch the kubeadm-config ConfigMap: failed to get component configs: could not download the kube-proxy configuration from ConfigMap "kube-proxy": Get "https://lb-apiserver.kubernetes.local:6443/api/v1/namespaces/kube-system/configmaps/kube-proxy?timeout=10s": net/http: request canceled (Client.Timeout exceeded while awaiting headers)
To see the stack trace of this error execute with --v=5 or higher`, true},
		{"handshake", `exited 1; stderr: error execution phase preflight: couldn't validate the identity of the API Server: Get "https://lb:6443/api/v1/namespaces/kube-public/configmaps/cluster-info": net/http: TLS handshake timeout`, true},
		// A preflight check that fails is the operator's to fix.
		{"preflight check", `exited 1; stderr: error execution phase preflight: [preflight] Some fatal errors occurred:
	[ERROR FileAvailable--etc-kubernetes-kubelet.conf]: /etc/kubernetes/kubelet.conf already exists`, false},
		// Later phases have changed the node: no blind retry.
		{"kubelet-start", `exited 1; stderr: error execution phase kubelet-start: timed out waiting for the condition: context deadline exceeded`, false},
		{"transport", `host node3: connect: dial tcp 127.0.0.1:2323: connect: connection refused`, false},
	} {
		if got := preflightTimeout(errors.New(c.err)); got != c.want {
			t.Errorf("%s: preflightTimeout = %v, want %v", c.name, got, c.want)
		}
	}
}

// testCA is a cluster CA certificate (PEM) made by metalk8s's own PKI,
// as the join step reads it.
func testCA(t *testing.T) []byte {
	t.Helper()
	k := &pki.Kubernetes{Dir: t.TempDir(), Algorithm: pki.ECDSAP256}
	if _, err := k.Ensure(); err != nil {
		t.Fatal(err)
	}
	files, err := k.Files()
	if err != nil {
		t.Fatal(err)
	}
	return files["ca.crt"]
}

// TestDiscoveryConfig reads the discovery kubeconfig as kubeadm's file
// discovery does: clientcmd's validation, then the current context's
// cluster (kubeadm's GetClusterFromKubeConfig).
func TestDiscoveryConfig(t *testing.T) {
	ca := testCA(t)
	for vars, want := range map[string]string{
		"": "https://lb-apiserver.kubernetes.local:6443",
		"loadbalancer_apiserver: {address: 10.0.0.100, port: 8383}": "https://lb-apiserver.kubernetes.local:8383",
	} {
		p, err := ParamsFrom(clusterWith(t, vars), true)
		if err != nil {
			t.Fatal(err)
		}
		data, err := p.DiscoveryConfig(ca)
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := clientcmd.Load(data)
		if err != nil {
			t.Fatal(err)
		}
		if err := clientcmd.Validate(*cfg); err != nil {
			t.Errorf("clientcmd rejects the discovery kubeconfig: %v\n%s", err, data)
		}
		_, cluster, err := kubeconfigutil.GetClusterFromKubeConfig(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if cluster.Server != want {
			t.Errorf("%q: server %q, want %q", vars, cluster.Server, want)
		}
		if !bytes.Equal(cluster.CertificateAuthorityData, ca) {
			t.Errorf("the CA is not the cluster's")
		}
		if kubeconfigutil.HasAuthenticationCredentials(cfg) {
			t.Errorf("the discovery kubeconfig holds credentials:\n%s", data)
		}
	}
}
