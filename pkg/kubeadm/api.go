package kubeadm

import (
	"context"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	bootstrapapi "k8s.io/cluster-bootstrap/token/api"
	bootstraputil "k8s.io/cluster-bootstrap/token/util"

	"github.com/metalk8s/metalk8s/pkg/kube"
	"github.com/metalk8s/metalk8s/pkg/pki"
)

// createToken makes a bootstrap token for one join, as a Secret of type
// bootstrap.kubernetes.io/token in kube-system (the format kubeadm's own
// `kubeadm token create` writes), usable for authentication and for
// signing the cluster-info ConfigMap, in kubeadm's default node group, and
// expiring after ttl. It returns "<id>.<secret>".
func createToken(ctx context.Context, c kubernetes.Interface, node string, ttl time.Duration) (string, error) {
	tok, err := bootstraputil.GenerateBootstrapToken()
	if err != nil {
		return "", err
	}
	id, secret, err := parseToken(tok)
	if err != nil {
		return "", err
	}
	s := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: bootstraputil.BootstrapTokenSecretName(id), Namespace: metav1.NamespaceSystem,
			Labels: map[string]string{"app.kubernetes.io/managed-by": "metalk8s"}},
		Type: bootstrapapi.SecretTypeBootstrapToken,
		StringData: map[string]string{
			bootstrapapi.BootstrapTokenIDKey:               id,
			bootstrapapi.BootstrapTokenSecretKey:           secret,
			bootstrapapi.BootstrapTokenDescriptionKey:      "metalk8s: join of " + node,
			bootstrapapi.BootstrapTokenExpirationKey:       time.Now().Add(ttl).UTC().Format(time.RFC3339),
			bootstrapapi.BootstrapTokenUsageAuthentication: "true",
			bootstrapapi.BootstrapTokenUsageSigningKey:     "true",
			bootstrapapi.BootstrapTokenExtraGroupsKey:      "system:bootstrappers:kubeadm:default-node-token",
		},
	}
	if _, err := c.CoreV1().Secrets(metav1.NamespaceSystem).Create(ctx, s, metav1.CreateOptions{}); err != nil {
		return "", fmt.Errorf("create a bootstrap token for %s: %w", node, err)
	}
	return tok, nil
}

// deleteToken removes a bootstrap token once its join is over.
func deleteToken(ctx context.Context, c kubernetes.Interface, tok string) error {
	id, _, err := parseToken(tok)
	if err != nil {
		return err
	}
	err = c.CoreV1().Secrets(metav1.NamespaceSystem).Delete(ctx, bootstraputil.BootstrapTokenSecretName(id), metav1.DeleteOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

// parseToken splits "<id>.<secret>" (kubeadm's token format).
func parseToken(tok string) (id, secret string, err error) {
	if !bootstraputil.IsValidBootstrapToken(tok) {
		return "", "", fmt.Errorf("not a bootstrap token (want %s)", bootstrapapi.BootstrapTokenPattern)
	}
	id, secret, _ = strings.Cut(tok, ".")
	return id, secret, nil
}

// nodeReady says whether a Node of that name exists and is Ready.
func nodeReady(ctx context.Context, c kubernetes.Interface, name string) (ready, found bool, err error) {
	n, err := c.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return false, false, nil
	}
	if err != nil {
		return false, false, fmt.Errorf("read node %s: %w", name, err)
	}
	return kube.NodeReady(n), true, nil
}

func pkiHash(caPEM []byte) (string, error) {
	if len(caPEM) == 0 {
		return "", fmt.Errorf("no cluster CA certificate")
	}
	return pki.CACertHash(caPEM)
}
