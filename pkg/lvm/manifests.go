package lvm

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"path"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/yaml"
)

// Volume is one mounted logical volume on a node, as it becomes a PersistentVolume.
type Volume struct {
	Node      string            // inventory host name = Kubernetes node name
	VG, LV    string            // volume group and logical volume names
	FSType    string            // "ext4", "xfs"
	MountPath string            // where it is mounted on the node: /mnt/<vg>/<uuid>
	SizeBytes int64             // the LV size in bytes (from lvs)
	Labels    map[string]string // the user's labels from the inventory (may be nil)
}

const DefaultStorageClass = "local-lvm"

// Label keys set on every PV.
const (
	LabelVG     = "metalk8s.io/vg"
	LabelNode   = "metalk8s.io/node"
	LabelFSType = "metalk8s.io/fstype"
)

const hostnameKey = "kubernetes.io/hostname"

// Validate reports the first problem that would make the volume's PV invalid.
func (v Volume) Validate() error {
	errf := func(format string, a ...any) error {
		return fmt.Errorf("volume %s/%s/%s: %s", v.Node, v.VG, v.LV, fmt.Sprintf(format, a...))
	}
	switch {
	case v.Node == "":
		return errf("empty node")
	case v.VG == "":
		return errf("empty volume group")
	case v.LV == "":
		return errf("empty logical volume")
	case v.MountPath == "":
		return errf("empty mount path")
	case !path.IsAbs(v.MountPath):
		return errf("mount path %q is not absolute", v.MountPath)
	case v.SizeBytes <= 0:
		return errf("size %d is not positive", v.SizeBytes)
	}
	keys := make([]string, 0, len(v.Labels))
	for k := range v.Labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if errs := validation.IsQualifiedName(k); len(errs) > 0 {
			return errf("label key %q: %s", k, strings.Join(errs, "; "))
		}
		if errs := validation.IsValidLabelValue(v.Labels[k]); len(errs) > 0 {
			return errf("label %q value %q: %s", k, v.Labels[k], strings.Join(errs, "; "))
		}
	}
	// Our own labels carry the node, VG and fstype as values: they must be valid too.
	for _, kv := range [][2]string{{LabelNode, v.Node}, {LabelVG, v.VG}, {LabelFSType, v.FSType}} {
		if errs := validation.IsValidLabelValue(kv[1]); len(errs) > 0 {
			return errf("label %q value %q: %s", kv[0], kv[1], strings.Join(errs, "; "))
		}
	}
	return nil
}

// PVName returns "<node>-<vg>-<lv>" made into a valid DNS-1123 subdomain.
func PVName(v Volume) string {
	raw := strings.ToLower(v.Node + "-" + v.VG + "-" + v.LV)
	mapped := strings.Map(func(r rune) rune {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') || r == '.' || r == '-' {
			return r
		}
		return '-'
	}, raw)
	// Each dot-separated part must start and end with [a-z0-9].
	var parts []string
	for _, p := range strings.Split(mapped, ".") {
		if p = strings.Trim(p, "-"); p != "" {
			parts = append(parts, p)
		}
	}
	name := strings.Join(parts, ".")

	sum := sha256.Sum256([]byte(v.Node + "\x00" + v.VG + "\x00" + v.LV))
	hash := hex.EncodeToString(sum[:])[:10]
	if name == "" {
		return "pv-" + hash
	}
	if len(name) > validation.DNS1123SubdomainMaxLength {
		name = name[:validation.DNS1123SubdomainMaxLength-len(hash)-1]
		name = strings.TrimRight(name, "-.") + "-" + hash
	}
	return name
}

// PersistentVolume returns the local PV for v, pinned to v.Node.
func PersistentVolume(v Volume, storageClass string) *corev1.PersistentVolume {
	labels := make(map[string]string, len(v.Labels)+3)
	for k, val := range v.Labels {
		labels[k] = val
	}
	labels[LabelVG] = v.VG
	labels[LabelNode] = v.Node
	labels[LabelFSType] = v.FSType

	var fsType *string
	if v.FSType != "" {
		fsType = &v.FSType
	}
	mode := corev1.PersistentVolumeFilesystem

	return &corev1.PersistentVolume{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "PersistentVolume"},
		ObjectMeta: metav1.ObjectMeta{Name: PVName(v), Labels: labels},
		Spec: corev1.PersistentVolumeSpec{
			Capacity: corev1.ResourceList{
				corev1.ResourceStorage: *resource.NewQuantity(v.SizeBytes, resource.BinarySI),
			},
			AccessModes:                   []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimRetain,
			StorageClassName:              storageClass,
			VolumeMode:                    &mode,
			PersistentVolumeSource: corev1.PersistentVolumeSource{
				Local: &corev1.LocalVolumeSource{Path: v.MountPath, FSType: fsType},
			},
			NodeAffinity: &corev1.VolumeNodeAffinity{
				Required: &corev1.NodeSelector{
					NodeSelectorTerms: []corev1.NodeSelectorTerm{{
						MatchExpressions: []corev1.NodeSelectorRequirement{{
							Key:      hostnameKey,
							Operator: corev1.NodeSelectorOpIn,
							Values:   []string{v.Node},
						}},
					}},
				},
			},
		},
	}
}

// StorageClass returns the default, non-provisioning class for local PVs.
func StorageClass(name string) *storagev1.StorageClass {
	reclaim := corev1.PersistentVolumeReclaimRetain
	binding := storagev1.VolumeBindingWaitForFirstConsumer
	return &storagev1.StorageClass{
		TypeMeta: metav1.TypeMeta{APIVersion: "storage.k8s.io/v1", Kind: "StorageClass"},
		ObjectMeta: metav1.ObjectMeta{
			Name:        name,
			Annotations: map[string]string{"storageclass.kubernetes.io/is-default-class": "true"},
		},
		Provisioner:       "kubernetes.io/no-provisioner",
		ReclaimPolicy:     &reclaim,
		VolumeBindingMode: &binding,
	}
}

// Render returns objs as multi-document YAML, without null creationTimestamp
// and empty status.
func Render(objs ...runtime.Object) ([]byte, error) {
	var out bytes.Buffer
	for i, obj := range objs {
		if obj == nil {
			return nil, fmt.Errorf("render: object %d is nil", i)
		}
		js, err := json.Marshal(obj)
		if err != nil {
			return nil, fmt.Errorf("render: object %d: %w", i, err)
		}
		dec := json.NewDecoder(bytes.NewReader(js))
		dec.UseNumber() // keep integers exact
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			return nil, fmt.Errorf("render: object %d: %w", i, err)
		}
		if meta, ok := m["metadata"].(map[string]any); ok {
			if ts, found := meta["creationTimestamp"]; found && ts == nil {
				delete(meta, "creationTimestamp")
			}
		}
		if st, ok := m["status"].(map[string]any); ok && len(st) == 0 {
			delete(m, "status")
		}
		doc, err := yaml.Marshal(m)
		if err != nil {
			return nil, fmt.Errorf("render: object %d: %w", i, err)
		}
		if i > 0 {
			out.WriteString("---\n")
		}
		out.Write(doc)
	}
	return out.Bytes(), nil
}
