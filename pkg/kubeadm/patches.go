package kubeadm

import (
	"fmt"
	"path"
	"slices"

	"sigs.k8s.io/yaml"

	"github.com/metalk8s/metalk8s/pkg/ssh"
)

// DefaultPatchesDir is kubespray's kubeadm_patches_dir: where the
// kubeadm_patches files go on every Kubernetes node, and the directory
// kubeadm init and join read them from.
const DefaultPatchesDir = "/etc/kubernetes/patches"

// PatchTargets are the kubeadm patch targets kubeadm_patches accepts
// (kubeadm's "Customizing components with the kubeadm API": patches).
var PatchTargets = []string{"kube-apiserver", "kube-controller-manager", "kube-scheduler", "etcd", "kubeletconfiguration", "corednsdeployment"}

// PatchTypes are the patch types, the default first.
var PatchTypes = []string{"strategic", "merge", "json"}

// Patch is one item of kubespray's kubeadm_patches: a patch kubeadm
// applies to a component's manifest or configuration when it writes it,
// at init or join (a node already joined keeps what it has until it is
// joined again).
type Patch struct {
	Target string // one of PatchTargets
	Type   string // one of PatchTypes
	Patch  any    // the patch: a dict, or a list of operations for "json"
}

// patches reads kubeadm_patches: a list of dicts with target, type
// (default strategic) and patch, as kubespray reads it.
func (r *reader) patches(key string) []Patch {
	v, ok := r.n.Vars[key]
	if !ok || v == nil {
		return nil
	}
	list, ok := v.([]any)
	if !ok {
		r.fail(key, "must be a list of {target, type, patch}, found %v", v)
		return nil
	}
	var out []Patch
	for i, x := range list {
		m, ok := x.(map[string]any)
		if !ok {
			r.fail(key, "item %d must be a dict with target, type and patch, found %v", i+1, x)
			continue
		}
		p := Patch{Type: PatchTypes[0], Patch: m["patch"]}
		p.Target, _ = m["target"].(string)
		if t, ok := m["type"]; ok {
			p.Type, _ = t.(string)
		}
		for k := range m {
			if k != "target" && k != "type" && k != "patch" {
				r.fail(key, "item %d: unknown key %q (want target, type, patch)", i+1, k)
			}
		}
		switch {
		case !slices.Contains(PatchTargets, p.Target):
			r.fail(key, "item %d: target %v is not one of %v", i+1, m["target"], PatchTargets)
		case !slices.Contains(PatchTypes, p.Type):
			r.fail(key, "item %d: type %v is not one of %v", i+1, m["type"], PatchTypes)
		case p.Type == "json" && !isList(p.Patch), p.Type != "json" && !isDict(p.Patch):
			r.fail(key, "item %d: patch must be a dict (a list of operations for type json), found %v", i+1, p.Patch)
		}
		out = append(out, p)
	}
	return out
}

func isList(x any) bool { _, ok := x.([]any); return ok }
func isDict(x any) bool { _, ok := x.(map[string]any); return ok }

// PatchFiles are the files of Params.Patches in PatchesDir, named as
// kubeadm reads them: "<target><suffix>+<type>.yaml", the suffix being
// the item's place in the list (kubeadm applies a target's patches in
// file name order, so in list order, as kubespray does).
func (p *Params) PatchFiles() ([]ssh.File, error) {
	var files []ssh.File
	for i, pt := range p.Patches {
		data, err := yaml.Marshal(pt.Patch)
		if err != nil {
			return nil, fmt.Errorf("kubeadm_patches item %d: %w", i+1, err)
		}
		name := fmt.Sprintf("%s%03d+%s.yaml", pt.Target, i, pt.Type)
		files = append(files, ssh.File{Path: path.Join(p.PatchesDir, name), Data: data, Mode: 0o600})
	}
	return files, nil
}
