package kube

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Forget drops a kind's cached List, for a step that waits on state other
// clients change (a node turning Ready): the next List asks the API.
func (c *Client) Forget(gvr schema.GroupVersionResource) { c.invalidate(gvr, nil) }

// NodeReady says whether a Node's Ready condition is True.
func NodeReady(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}
