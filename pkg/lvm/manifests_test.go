package lvm

import (
	"bytes"
	"reflect"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/yaml"
)

func testVolume() Volume {
	return Volume{
		Node:      "node1",
		VG:        "vg_metalk8s",
		LV:        "lv01",
		FSType:    "ext4",
		MountPath: "/mnt/vg_metalk8s/0d6f2c1e-aaaa-bbbb-cccc-123456789abc",
		SizeBytes: 10 << 30,
		Labels: map[string]string{
			"app":           "db",
			LabelVG:         "user-value", // ours must win
			"example.com/x": "y",
		},
	}
}

func splitDocs(t *testing.T, out []byte) []string {
	t.Helper()
	docs := strings.Split(string(out), "---\n")
	for i, d := range docs {
		if strings.TrimSpace(d) == "" {
			t.Fatalf("document %d is empty in:\n%s", i, out)
		}
	}
	return docs
}

func TestRenderRoundTrip(t *testing.T) {
	v := testVolume()
	out, err := Render(PersistentVolume(v, DefaultStorageClass), StorageClass(DefaultStorageClass))
	if err != nil {
		t.Fatal(err)
	}
	docs := splitDocs(t, out)
	if len(docs) != 2 {
		t.Fatalf("got %d documents, want 2:\n%s", len(docs), out)
	}

	var pv corev1.PersistentVolume
	if err := yaml.UnmarshalStrict([]byte(docs[0]), &pv); err != nil {
		t.Fatalf("PV: %v\n%s", err, docs[0])
	}
	if pv.APIVersion != "v1" || pv.Kind != "PersistentVolume" {
		t.Errorf("PV TypeMeta = %q %q", pv.APIVersion, pv.Kind)
	}
	if pv.Name != "node1-vg-metalk8s-lv01" {
		t.Errorf("PV name = %q", pv.Name)
	}
	wantLabels := map[string]string{
		"app":           "db",
		"example.com/x": "y",
		LabelVG:         "vg_metalk8s",
		LabelNode:       "node1",
		LabelFSType:     "ext4",
	}
	if !reflect.DeepEqual(pv.Labels, wantLabels) {
		t.Errorf("PV labels = %v, want %v", pv.Labels, wantLabels)
	}
	s := pv.Spec
	q := s.Capacity[corev1.ResourceStorage]
	if q.Value() != 10<<30 || q.String() != "10Gi" {
		t.Errorf("capacity = %s (%d)", q.String(), q.Value())
	}
	if !reflect.DeepEqual(s.AccessModes, []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce}) {
		t.Errorf("accessModes = %v", s.AccessModes)
	}
	if s.PersistentVolumeReclaimPolicy != corev1.PersistentVolumeReclaimRetain {
		t.Errorf("reclaim policy = %q", s.PersistentVolumeReclaimPolicy)
	}
	if s.StorageClassName != "local-lvm" {
		t.Errorf("storageClassName = %q", s.StorageClassName)
	}
	if s.VolumeMode == nil || *s.VolumeMode != corev1.PersistentVolumeFilesystem {
		t.Errorf("volumeMode = %v", s.VolumeMode)
	}
	if s.Local == nil || s.Local.Path != v.MountPath || s.Local.FSType == nil || *s.Local.FSType != "ext4" {
		t.Errorf("local = %+v", s.Local)
	}
	if s.NodeAffinity == nil || s.NodeAffinity.Required == nil {
		t.Fatalf("nodeAffinity.required missing")
	}
	wantTerms := []corev1.NodeSelectorTerm{{MatchExpressions: []corev1.NodeSelectorRequirement{{
		Key: "kubernetes.io/hostname", Operator: corev1.NodeSelectorOpIn, Values: []string{"node1"},
	}}}}
	if !reflect.DeepEqual(s.NodeAffinity.Required.NodeSelectorTerms, wantTerms) {
		t.Errorf("nodeSelectorTerms = %+v", s.NodeAffinity.Required.NodeSelectorTerms)
	}

	var sc storagev1.StorageClass
	if err := yaml.UnmarshalStrict([]byte(docs[1]), &sc); err != nil {
		t.Fatalf("StorageClass: %v\n%s", err, docs[1])
	}
	if sc.APIVersion != "storage.k8s.io/v1" || sc.Kind != "StorageClass" {
		t.Errorf("SC TypeMeta = %q %q", sc.APIVersion, sc.Kind)
	}
	if sc.Name != "local-lvm" {
		t.Errorf("SC name = %q", sc.Name)
	}
	if !reflect.DeepEqual(sc.Annotations, map[string]string{"storageclass.kubernetes.io/is-default-class": "true"}) {
		t.Errorf("SC annotations = %v", sc.Annotations)
	}
	if sc.Provisioner != "kubernetes.io/no-provisioner" {
		t.Errorf("provisioner = %q", sc.Provisioner)
	}
	if sc.VolumeBindingMode == nil || *sc.VolumeBindingMode != storagev1.VolumeBindingWaitForFirstConsumer {
		t.Errorf("volumeBindingMode = %v", sc.VolumeBindingMode)
	}
	if sc.ReclaimPolicy == nil || *sc.ReclaimPolicy != corev1.PersistentVolumeReclaimRetain {
		t.Errorf("reclaimPolicy = %v", sc.ReclaimPolicy)
	}

	text := string(out)
	for _, bad := range []string{"creationTimestamp", "status:"} {
		if strings.Contains(text, bad) {
			t.Errorf("output contains %q:\n%s", bad, text)
		}
	}
}

func TestRenderDeterministic(t *testing.T) {
	var first []byte
	for i := 0; i < 20; i++ {
		// Fresh objects each time, so map iteration order can differ.
		out, err := Render(PersistentVolume(testVolume(), DefaultStorageClass), StorageClass(DefaultStorageClass))
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			first = out
		} else if !bytes.Equal(out, first) {
			t.Fatalf("run %d differs:\n%s\nvs\n%s", i, out, first)
		}
	}
}

func TestRenderNil(t *testing.T) {
	if _, err := Render(nil); err == nil {
		t.Error("Render(nil) succeeded")
	}
	out, err := Render()
	if err != nil || len(out) != 0 {
		t.Errorf("Render() = %q, %v", out, err)
	}
}

func TestPVName(t *testing.T) {
	cases := []struct {
		node, vg, lv, want string
	}{
		{"node1", "vg_metalk8s", "lv01", "node1-vg-metalk8s-lv01"},
		{"Node-1.Example.COM", "VG+Data", "_LV__01_", "node-1.example.com-vg-data--lv--01"},
		{"-node.", "vg", "lv", "node.vg-lv"}, // no label may start or end with '-'
		{"___", "+", "_", ""},                // nothing left: hashed fallback
	}
	for _, c := range cases {
		got := PVName(Volume{Node: c.node, VG: c.vg, LV: c.lv})
		if errs := validation.IsDNS1123Subdomain(got); len(errs) > 0 {
			t.Errorf("PVName(%q,%q,%q) = %q invalid: %v", c.node, c.vg, c.lv, got, errs)
		}
		if c.want != "" && got != c.want {
			t.Errorf("PVName(%q,%q,%q) = %q, want %q", c.node, c.vg, c.lv, got, c.want)
		}
		if c.want == "" && !strings.HasPrefix(got, "pv-") {
			t.Errorf("PVName(%q,%q,%q) = %q, want pv-<hash>", c.node, c.vg, c.lv, got)
		}
	}
}

func TestPVNameLong(t *testing.T) {
	node := strings.Repeat("n", 200)
	a := PVName(Volume{Node: node, VG: "vg_metalk8s", LV: strings.Repeat("a", 100)})
	b := PVName(Volume{Node: node, VG: "vg_metalk8s", LV: strings.Repeat("a", 99) + "b"})
	for _, n := range []string{a, b} {
		if len(n) > 253 {
			t.Errorf("len(%q) = %d > 253", n, len(n))
		}
		if errs := validation.IsDNS1123Subdomain(n); len(errs) > 0 {
			t.Errorf("%q invalid: %v", n, errs)
		}
	}
	if a == b {
		t.Errorf("two long inputs gave the same name %q", a)
	}
	if !strings.HasPrefix(a, node+"-vg-metalk8s-") {
		t.Errorf("long name lost its readable prefix: %q", a)
	}

	// A cut landing right after a dot or dash must not leave it before the hash.
	dotted := PVName(Volume{Node: strings.Repeat("n", 241) + ".x", VG: "vg", LV: "lv" + strings.Repeat("z", 20)})
	if errs := validation.IsDNS1123Subdomain(dotted); len(errs) > 0 || len(dotted) > 253 {
		t.Errorf("%q invalid: %v", dotted, errs)
	}
}

func TestValidate(t *testing.T) {
	if err := testVolume().Validate(); err != nil {
		t.Fatalf("valid volume rejected: %v", err)
	}
	cases := map[string]func(v *Volume){
		"empty node":        func(v *Volume) { v.Node = "" },
		"empty vg":          func(v *Volume) { v.VG = "" },
		"empty lv":          func(v *Volume) { v.LV = "" },
		"empty mount path":  func(v *Volume) { v.MountPath = "" },
		"relative path":     func(v *Volume) { v.MountPath = "mnt/vg/x" },
		"zero size":         func(v *Volume) { v.SizeBytes = 0 },
		"negative size":     func(v *Volume) { v.SizeBytes = -1 },
		"bad label key":     func(v *Volume) { v.Labels = map[string]string{"bad key!": "x"} },
		"empty label key":   func(v *Volume) { v.Labels = map[string]string{"": "x"} },
		"bad key prefix":    func(v *Volume) { v.Labels = map[string]string{"Bad_Prefix/k": "x"} },
		"bad label value":   func(v *Volume) { v.Labels = map[string]string{"app": "has space"} },
		"long label value":  func(v *Volume) { v.Labels = map[string]string{"app": strings.Repeat("x", 64)} },
		"vg not label-safe": func(v *Volume) { v.VG = "vg+data" },
	}
	for name, mutate := range cases {
		v := testVolume()
		mutate(&v)
		err := v.Validate()
		if err == nil {
			t.Errorf("%s: accepted", name)
			continue
		}
		prefix := "volume " + v.Node + "/" + v.VG + "/" + v.LV + ": "
		if !strings.HasPrefix(err.Error(), prefix) {
			t.Errorf("%s: error %q does not start with %q", name, err, prefix)
		}
	}

	v := testVolume()
	v.Labels = map[string]string{"bad key!": "x"}
	if got := v.Validate().Error(); !strings.HasPrefix(got, "volume node1/vg_metalk8s/lv01: label key ") {
		t.Errorf("error = %q", got)
	}
}
