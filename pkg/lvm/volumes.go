package lvm

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	"github.com/metalk8s/metalk8s/pkg/inventory"
	"github.com/metalk8s/metalk8s/pkg/kube"
	"github.com/metalk8s/metalk8s/pkg/steps"
)

// The "volumes" phase's step names; they run on the first control-plane
// host ("volumes/pvs/node2@node1") and act on the cluster through the API.
const (
	StorageClassStep = "volumes/storage-class"
	PVStepPrefix     = "volumes/pvs/" // + the node whose volumes they are
	PruneStep        = "volumes/prune"
)

// VolumeSteps returns the "volumes" phase: server-side apply of the
// local-lvm StorageClass, of each worker's PersistentVolumes as its
// storage/manifests step wrote them to artifactsDir/storage (one step per
// node, after that step; see ApplyPVs), and removal of metalk8s's PVs that no longer
// match a volume of the inventory. Every step depends on
// kube.ReadyStepID on the first control plane; when existing has no such
// step (no bundle, so no control plane), there is no volumes phase: nil.
func VolumeSteps(cl *inventory.Cluster, artifactsDir string, existing []*steps.Step) []*steps.Step {
	if len(cl.ControlPlane) == 0 {
		return nil
	}
	first := cl.ControlPlane[0].Name
	ready := steps.ID(kube.ReadyStepID, first)
	have := map[string]bool{}
	for _, s := range existing {
		have[s.ID] = true
	}
	if !have[ready] {
		return nil
	}
	var cps []string
	for _, n := range cl.ControlPlane {
		cps = append(cps, n.Name)
	}
	connect := func(ctx context.Context) (*kube.Client, error) {
		return kube.FromRun(ctx, kube.AdminConfPath(artifactsDir), cps)
	}

	sc := StorageClass(DefaultStorageClass)
	out := []*steps.Step{clusterStep(steps.ID(StorageClassStep, first), first, []string{ready}, sc,
		func(ctx context.Context, dryRun bool) (steps.Change, error) {
			c, err := connect(ctx)
			if err != nil {
				return steps.NoChange, err
			}
			obj, err := kube.ToUnstructured(sc)
			if err != nil {
				return steps.NoChange, err
			}
			diff, err := c.Apply(ctx, []*unstructured.Unstructured{obj}, dryRun)
			return steps.Changes(diff...), err
		})}

	expected := map[string]bool{}
	for _, n := range cl.Nodes {
		manifests := steps.ID("storage/manifests", n.Name)
		if !n.Worker || len(n.Storage) == 0 || !have[manifests] {
			continue
		}
		var vols []Volume // what the inventory says; sizes and mounts come from the file
		for _, vg := range n.Storage {
			for _, lv := range vg.LVs {
				v := Volume{Node: n.Name, VG: vg.Name, LV: lv.Name, Labels: lv.Labels}
				expected[PVName(v)] = true
				vols = append(vols, v)
			}
		}
		file := filepath.Join(artifactsDir, "storage", PVFile(n.Name))
		out = append(out, clusterStep(steps.ID(PVStepPrefix+n.Name, first), first, []string{ready, manifests},
			struct {
				Volumes      []Volume
				File         string
				StorageClass string
			}{vols, "storage/" + PVFile(n.Name), DefaultStorageClass},
			func(ctx context.Context, dryRun bool) (steps.Change, error) {
				objs, err := readPVFile(file, n.Name)
				if err != nil {
					return steps.NoChange, err
				}
				c, err := connect(ctx)
				if err != nil {
					return steps.NoChange, err
				}
				return ApplyPVs(ctx, c, objs, dryRun)
			}))
	}
	out = append(out, clusterStep(steps.ID(PruneStep, first), first, []string{ready}, sortedKeys(expected),
		func(ctx context.Context, dryRun bool) (steps.Change, error) {
			c, err := connect(ctx)
			if err != nil {
				return steps.NoChange, err
			}
			return Prune(ctx, c, expected, dryRun)
		}))
	return out
}

// clusterStep is a step of the volumes phase: its check is do(dryRun
// true), its apply do(dryRun false).
func clusterStep(id, host string, deps []string, inputs any, do func(ctx context.Context, dryRun bool) (steps.Change, error)) *steps.Step {
	return &steps.Step{ID: id, Host: host, Phase: "volumes", Deps: deps, Inputs: inputs,
		Check: func(ctx context.Context, _ steps.Host) (steps.Change, error) { return do(ctx, true) },
		Apply: func(ctx context.Context, _ steps.Host) error {
			_, err := do(ctx, false)
			return err
		}}
}

// readPVFile reads a node's PersistentVolumes as storage/manifests wrote
// them (multi-document YAML); each must be a PersistentVolume labelled
// with that node.
func readPVFile(path, node string) ([]*unstructured.Unstructured, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("volumes of %s: %w", node, err)
	}
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var out []*unstructured.Unstructured
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if len(bytes.TrimSpace(doc)) == 0 {
			continue
		}
		u := &unstructured.Unstructured{}
		if err := yaml.Unmarshal(doc, &u.Object); err != nil {
			return nil, fmt.Errorf("%s: document %d: %w", path, len(out)+1, err)
		}
		if u.GetKind() != "PersistentVolume" || u.GetLabels()[LabelNode] != node {
			return nil, fmt.Errorf("%s: document %d is %s %q, not a PersistentVolume of node %s",
				path, len(out)+1, u.GetKind(), u.GetName(), node)
		}
		out = append(out, u)
	}
	return out, nil
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
