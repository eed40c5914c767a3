package kubeadm

// Keeps go.mod's client-go requirements until the steps import them.
import (
	_ "k8s.io/client-go/dynamic"
	_ "k8s.io/client-go/kubernetes"
	_ "k8s.io/client-go/tools/clientcmd"
)
