package addons

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	"helm.sh/helm/v4/pkg/release/common"
	rspb "helm.sh/helm/v4/pkg/release/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"

	"github.com/metalk8s/metalk8s/pkg/kube"
)

// ReleaseHealth is one Helm release's health: Problems empty when its
// newest revision is deployed and every workload it made is ready.
type ReleaseHealth struct {
	Namespace, Name string
	Problems        []string
}

// Health reads every Helm release of the cluster (the addons, and any
// other release in Helm's Secrets storage) and, for each release's newest
// revision, checks its status is deployed and the workloads of its
// manifest are ready: Deployments and StatefulSets with all replicas
// ready and updated, DaemonSets scheduled and ready on every node they
// target, prometheus-operator's Prometheus and Alertmanager with their
// Available condition True. Sorted by namespace and name.
func Health(ctx context.Context, c *kube.Client) ([]ReleaseHealth, error) {
	cfg, err := helmConfig(c.RESTConfig(), "", nil)
	if err != nil {
		return nil, err
	}
	all, err := cfg.Releases.ListReleases()
	if err != nil {
		return nil, fmt.Errorf("Helm releases: %w", err)
	}
	newest := map[string]*rspb.Release{}
	for _, r := range all {
		rel, err := release(r, nil)
		if err != nil {
			return nil, err
		}
		key := rel.Namespace + "/" + rel.Name
		if old := newest[key]; old == nil || rel.Version > old.Version {
			newest[key] = rel
		}
	}
	var out []ReleaseHealth
	for _, rel := range newest {
		h := ReleaseHealth{Namespace: rel.Namespace, Name: rel.Name}
		if st := rel.Info.Status; st != common.StatusDeployed {
			h.Problems = append(h.Problems, fmt.Sprintf("revision %d is %s", rel.Version, st))
		}
		objs, err := manifestObjects(rel.Manifest)
		if err != nil {
			return nil, fmt.Errorf("release %s/%s: %w", rel.Namespace, rel.Name, err)
		}
		for _, o := range objs {
			ns := o.GetNamespace()
			if ns == "" {
				ns = rel.Namespace
			}
			p, err := workloadProblem(ctx, c, o.GroupVersionKind(), ns, o.GetName())
			if err != nil {
				return nil, err
			}
			if p != "" {
				h.Problems = append(h.Problems, p)
			}
		}
		out = append(out, h)
	}
	sort.Slice(out, func(i, j int) bool {
		return out[i].Namespace+"/"+out[i].Name < out[j].Namespace+"/"+out[j].Name
	})
	return out, nil
}

// manifestObjects parses a release's manifest (YAML documents).
func manifestObjects(manifest string) ([]*unstructured.Unstructured, error) {
	d := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader([]byte(manifest)), 4096)
	var out []*unstructured.Unstructured
	for {
		var m map[string]any
		err := d.Decode(&m)
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		if len(m) > 0 {
			out = append(out, &unstructured.Unstructured{Object: m})
		}
	}
}

// workloadProblem says what is not ready in the named object, "" when it
// is ready or not a workload.
func workloadProblem(ctx context.Context, c *kube.Client, gvk schema.GroupVersionKind, ns, name string) (string, error) {
	ref := fmt.Sprintf("%s %s/%s", gvk.Kind, ns, name)
	switch gvk.GroupKind().String() {
	case "Deployment.apps", "StatefulSet.apps", "DaemonSet.apps", "Prometheus.monitoring.coreos.com", "Alertmanager.monitoring.coreos.com":
	default:
		return "", nil
	}
	gvr, _, err := c.Mapping(gvk)
	if err != nil {
		return ref + ": " + err.Error(), nil
	}
	o, err := c.Get(ctx, gvr, ns, name)
	if err != nil {
		return "", fmt.Errorf("%s: %w", ref, err)
	}
	if o == nil {
		return ref + ": missing", nil
	}
	n := func(path ...string) int64 {
		v, _, _ := unstructured.NestedInt64(o.Object, path...)
		return v
	}
	switch gvk.Kind {
	case "Deployment", "StatefulSet":
		want, set, _ := unstructured.NestedInt64(o.Object, "spec", "replicas")
		if !set {
			want = 1 // the API's default
		}
		ready, updated := n("status", "readyReplicas"), n("status", "updatedReplicas")
		if ready < want || updated < want {
			return fmt.Sprintf("%s: %d of %d replicas ready (%d updated)", ref, ready, want, updated), nil
		}
	case "DaemonSet":
		want, ready := n("status", "desiredNumberScheduled"), n("status", "numberReady")
		if ready < want {
			return fmt.Sprintf("%s: %d of %d pods ready", ref, ready, want), nil
		}
	default:
		switch st, msg, found := kube.Condition(o, "Available"); {
		case !found:
			return ref + ": no Available condition yet", nil
		case st != "True":
			return fmt.Sprintf("%s: not available: %v", ref, strings.TrimSpace(msg)), nil
		}
	}
	return "", nil
}
