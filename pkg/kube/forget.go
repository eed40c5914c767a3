package kube

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
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

// Condition finds the condition of type typ in an object's
// status.conditions (any kind: APIService, Prometheus...): its status
// ("True", "False", "Unknown") and message; found false when absent.
func Condition(obj *unstructured.Unstructured, typ string) (status, message string, found bool) {
	conds, _, _ := unstructured.NestedSlice(obj.Object, "status", "conditions")
	for _, c := range conds {
		m, _ := c.(map[string]any)
		if m["type"] == typ {
			return fmt.Sprint(m["status"]), fmt.Sprint(m["message"]), true
		}
	}
	return "", "", false
}
