package kube

import "k8s.io/apimachinery/pkg/runtime/schema"

// Forget drops a kind's cached List, for a step that waits on state other
// clients change (a node turning Ready): the next List asks the API.
func (c *Client) Forget(gvr schema.GroupVersionResource) { c.invalidate(gvr, nil) }
