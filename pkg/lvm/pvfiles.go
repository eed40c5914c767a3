package lvm

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"

	"k8s.io/apimachinery/pkg/runtime"

	"github.com/metalk8s/metalk8s/pkg/inventory"
	"github.com/metalk8s/metalk8s/pkg/steps"
)

// StorageClassFile is the StorageClass's file in artifacts/storage.
const StorageClassFile = "storageclass.yaml"

// PVFile is a node's PersistentVolumes' file in artifacts/storage.
func PVFile(host string) string { return host + "-pv.yaml" }

// manifestsStep writes the node's PersistentVolumes (and the
// StorageClass) on the operator's machine, from what its volumes are.
// They are applied once the control plane exists.
func manifestsStep(n *inventory.Node, artifactsDir string, lvSteps []string) *steps.Step {
	dir := filepath.Join(artifactsDir, "storage")
	var lvs [][2]string
	for _, vg := range n.Storage {
		for _, lv := range vg.LVs {
			lvs = append(lvs, [2]string{vg.Name, lv.Name})
		}
	}
	render := func(ctx context.Context, h steps.Host) (map[string][]byte, error) {
		st, err := hostState(ctx, h, n)
		if err != nil {
			return nil, err
		}
		pvs, err := volumes(n, st)
		if err != nil {
			return nil, err
		}
		var objs []runtime.Object
		for _, v := range pvs {
			objs = append(objs, PersistentVolume(v, DefaultStorageClass))
		}
		pv, err := Render(objs...)
		if err != nil {
			return nil, err
		}
		sc, err := Render(StorageClass(DefaultStorageClass))
		if err != nil {
			return nil, err
		}
		return map[string][]byte{PVFile(n.Name): pv, StorageClassFile: sc}, nil
	}
	return &steps.Step{ID: steps.ID("storage/manifests", n.Name), Host: n.Name, Phase: "storage", Deps: lvSteps, Inputs: lvs,
		Check: func(ctx context.Context, h steps.Host) (steps.Change, error) {
			files, err := render(ctx, h)
			if err != nil {
				return steps.NoChange, err
			}
			var diff []string
			for _, name := range []string{PVFile(n.Name), StorageClassFile} {
				have, err := os.ReadFile(filepath.Join(dir, name))
				switch {
				case os.IsNotExist(err):
					diff = append(diff, "+ write artifacts/storage/"+name)
				case err != nil:
					return steps.NoChange, err
				case !bytes.Equal(have, files[name]):
					diff = append(diff, "~ rewrite artifacts/storage/"+name)
				}
			}
			return steps.Changes(diff...), nil
		},
		Apply: func(ctx context.Context, h steps.Host) error {
			files, err := render(ctx, h)
			if err != nil {
				return err
			}
			for name, data := range files {
				if err := steps.WriteFileAtomic(filepath.Join(dir, name), data, 0o644); err != nil {
					return err
				}
			}
			return nil
		}}
}

// volumes lists the node's mounted volumes as PersistentVolumes; a volume
// without its filesystem is an error (its step did not run).
func volumes(n *inventory.Node, st *State) ([]Volume, error) {
	var out []Volume
	for _, vg := range n.Storage {
		for _, lv := range vg.LVs {
			cur := st.LVs[lvKey(vg.Name, lv.Name)]
			if cur == nil || cur.FSUUID == "" {
				return nil, fmt.Errorf("host %s: volume %s/%s has no filesystem yet", n.Name, vg.Name, lv.Name)
			}
			v := Volume{Node: n.Name, VG: vg.Name, LV: lv.Name, FSType: cur.FSType,
				MountPath: MountPath(vg.Name, cur.FSUUID), SizeBytes: cur.Size, Labels: lv.Labels}
			if err := v.Validate(); err != nil {
				return nil, err
			}
			out = append(out, v)
		}
	}
	return out, nil
}
