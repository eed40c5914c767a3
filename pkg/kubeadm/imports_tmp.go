package kubeadm

import (
	_ "k8s.io/kube-proxy/config/v1alpha1"
	_ "k8s.io/kubelet/config/v1beta1"
	_ "k8s.io/kubernetes/cmd/kubeadm/app/apis/kubeadm/v1beta4"
	_ "k8s.io/client-go/kubernetes"
	_ "k8s.io/client-go/dynamic"
	_ "k8s.io/client-go/tools/clientcmd"
	_ "k8s.io/cluster-bootstrap/token/util"
)
