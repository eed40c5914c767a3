package lvm

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"

	"github.com/metalk8s/metalk8s/pkg/inventory"
	"github.com/metalk8s/metalk8s/pkg/kube"
	"github.com/metalk8s/metalk8s/pkg/kube/kubetest"
	"github.com/metalk8s/metalk8s/pkg/steps"
)

func volumesCluster() *inventory.Cluster {
	st := []inventory.VG{{Name: "vg", Drives: []string{"/dev/vdb"}, LVs: []inventory.LV{{Name: "lv01", Size: "1G"}, {Name: "lv02", Size: "1G"}}}}
	cp1 := &inventory.Node{Name: "cp1", ControlPlane: true, Worker: true, Storage: st}
	cp2 := &inventory.Node{Name: "cp2", ControlPlane: true}
	w := &inventory.Node{Name: "w1", Worker: true, Storage: st}
	bare := &inventory.Node{Name: "w2", Worker: true}
	return &inventory.Cluster{Nodes: []*inventory.Node{cp1, cp2, w, bare}, ControlPlane: []*inventory.Node{cp1, cp2},
		Workers: []*inventory.Node{cp1, w, bare}}
}

func TestVolumeSteps(t *testing.T) {
	cl := volumesCluster()
	check := func(context.Context, steps.Host) (steps.Change, error) { return steps.NoChange, nil }
	var base []*steps.Step
	for _, n := range cl.Nodes {
		base = append(base, &steps.Step{ID: steps.ID("prepare/packages", n.Name), Host: n.Name, Phase: "prepare", Check: check})
	}
	base = append(base, Steps(cl, "/art", nil)...)
	if got := VolumeSteps(cl, "/art", base); got != nil {
		t.Errorf("without %s: %d volumes steps, want none", kube.ReadyStepID, len(got))
	}
	ready := &steps.Step{ID: steps.ID(kube.ReadyStepID, "cp1"), Host: "cp1", Phase: "control-plane", Check: check}
	base = append(base, ready)
	vs := VolumeSteps(cl, "/art", base)
	got := map[string][]string{}
	for _, s := range vs {
		got[s.ID] = s.Deps
		if s.Host != "cp1" || s.Phase != "volumes" {
			t.Errorf("%s: host %s phase %s, want cp1 and volumes", s.ID, s.Host, s.Phase)
		}
	}
	want := map[string][]string{
		"volumes/storage-class@cp1": {ready.ID},
		"volumes/pvs/cp1@cp1":       {ready.ID, "storage/manifests@cp1"},
		"volumes/pvs/w1@cp1":        {ready.ID, "storage/manifests@w1"},
		"volumes/prune@cp1":         {ready.ID},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("volumes steps and deps:\n %v\nwant\n %v", got, want)
	}
	if _, err := steps.NewGraph(append(base, vs...)); err != nil {
		t.Errorf("graph: %v", err)
	}
	prune := vs[len(vs)-1].Inputs
	if want := []string{"cp1-vg-lv01", "cp1-vg-lv02", "w1-vg-lv01", "w1-vg-lv02"}; !reflect.DeepEqual(prune, want) {
		t.Errorf("prune inputs %v, want %v", prune, want)
	}
}

func TestReadPVFile(t *testing.T) {
	dir := t.TempDir()
	v := Volume{Node: "w1", VG: "vg", LV: "lv01", FSType: "ext4", MountPath: "/mnt/vg/u1", SizeBytes: 1 << 30}
	good, _ := Render(PersistentVolume(v, DefaultStorageClass), PersistentVolume(v, DefaultStorageClass))
	other, _ := Render(PersistentVolume(Volume{Node: "w2", VG: "vg", LV: "x", MountPath: "/m", SizeBytes: 1}, DefaultStorageClass))
	sc, _ := Render(StorageClass(DefaultStorageClass))
	tests := []struct {
		name    string
		data    []byte
		n       int
		wantErr string
	}{
		{"two PVs", good, 2, ""},
		{"empty", nil, 0, ""},
		{"another node's", other, 0, "not a PersistentVolume of node w1"},
		{"a StorageClass", sc, 0, "is StorageClass"},
		{"not YAML", []byte("a: [\n"), 0, "document 1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_"))
			if err := os.WriteFile(p, tc.data, 0o644); err != nil {
				t.Fatal(err)
			}
			objs, err := readPVFile(p, "w1")
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Errorf("error %v, want one with %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || len(objs) != tc.n {
				t.Fatalf("%d objects, %v; want %d", len(objs), err, tc.n)
			}
		})
	}
	if _, err := readPVFile(filepath.Join(dir, "absent"), "w1"); err == nil || !strings.Contains(err.Error(), "volumes of w1") {
		t.Errorf("absent file: %v, want an error naming the node", err)
	}
}

// TestVolumesAPI applies and prunes PersistentVolumes on a real
// kube-apiserver (kubetest); a plain TCP dialer stands in for the SSH
// connection, exercised by the end-to-end test on the VM lab.
func TestVolumesAPI(t *testing.T) {
	s := kubetest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// A client per run: its List cache does not see what others change.
	connect := func() *kube.Client {
		c, err := kube.Connect(ctx, s.Kubeconfig, []string{"cp1"}, func(string) (kube.Dialer, error) { return s.Dialer(), nil })
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	c := connect()
	go pvProtection(ctx, c)
	apply := func(dryRun bool, objs ...runtime.Object) []string {
		t.Helper()
		var us []*unstructured.Unstructured
		for _, o := range objs {
			u, err := kube.ToUnstructured(o)
			if err != nil {
				t.Fatal(err)
			}
			us = append(us, u)
		}
		diff, err := c.Apply(ctx, us, dryRun)
		if err != nil {
			t.Fatal(err)
		}
		return diff
	}
	v1 := Volume{Node: "w1", VG: "vg", LV: "lv01", FSType: "ext4", MountPath: "/mnt/vg/u1", SizeBytes: 1 << 30, Labels: map[string]string{"tier": "fast"}}
	v2 := Volume{Node: "w1", VG: "vg", LV: "lv02", FSType: "xfs", MountPath: "/mnt/vg/u2", SizeBytes: 2 << 30}

	// The file storage/manifests writes, applied as the volumes step does.
	data, err := Render(PersistentVolume(v1, DefaultStorageClass), PersistentVolume(v2, DefaultStorageClass))
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), PVFile("w1"))
	if err := os.WriteFile(file, data, 0o644); err != nil {
		t.Fatal(err)
	}
	objs, err := readPVFile(file, "w1")
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range [][]string{
		{"+ create PersistentVolume w1-vg-lv01", "+ create PersistentVolume w1-vg-lv02"}, // plan
		{"+ create PersistentVolume w1-vg-lv01", "+ create PersistentVolume w1-vg-lv02"}, // up
		nil, // up again
	} {
		diff, err := c.Apply(ctx, objs, i == 0)
		if err != nil || !reflect.DeepEqual(diff, want) {
			t.Errorf("apply %d of the file: %q, %v; want %q", i, diff, err, want)
		}
	}
	if diff := apply(true, PersistentVolume(v1, DefaultStorageClass)); diff != nil {
		t.Errorf("the typed PV differs from the file's: %q", diff)
	}
	if diff := apply(false, StorageClass(DefaultStorageClass)); !reflect.DeepEqual(diff, []string{"+ create StorageClass local-lvm"}) {
		t.Errorf("StorageClass: %q", diff)
	}
	if diff := apply(true, StorageClass(DefaultStorageClass)); diff != nil {
		t.Errorf("StorageClass again: %q, want none", diff)
	}
	grown := v1
	grown.SizeBytes = 3 << 30
	if diff, want := apply(true, PersistentVolume(grown, DefaultStorageClass)), []string{"~ update PersistentVolume w1-vg-lv01: spec.capacity.storage 1Gi -> 3Gi"}; !reflect.DeepEqual(diff, want) {
		t.Errorf("grown volume: %q, want %q", diff, want)
	}

	// A reformatted volume (new filesystem UUID, so new mount path) has no
	// claim: its PV is deleted and created again.
	moved := v1
	moved.MountPath = "/mnt/vg/u9"
	movedObj, _ := kube.ToUnstructured(PersistentVolume(moved, DefaultStorageClass))
	for i, want := range [][]string{
		{"± replace PersistentVolume w1-vg-lv01: spec.local.path /mnt/vg/u1 -> /mnt/vg/u9 (no claim: deleted and created again)"},
		{"± replace PersistentVolume w1-vg-lv01: spec.local.path /mnt/vg/u1 -> /mnt/vg/u9 (no claim: deleted and created again)"},
		nil,
	} {
		ch, err := ApplyPVs(ctx, c, []*unstructured.Unstructured{movedObj}, i != 1) // plan, up, plan
		if err != nil || !reflect.DeepEqual(ch.Diff, want) || ch.Needed != (want != nil) || ch.Warnings != nil {
			t.Errorf("moved volume, pass %d: %+v, %v; want diff %q", i, ch, err, want)
		}
	}
	if pv, err := c.Typed().CoreV1().PersistentVolumes().Get(ctx, "w1-vg-lv01", metav1.GetOptions{}); err != nil || pv.Spec.Local.Path != "/mnt/vg/u9" {
		t.Errorf("moved volume's PV: %v, %v; want path /mnt/vg/u9", pv, err)
	}

	// Stale PVs: one unbound, one bound, and one that is not metalk8s's.
	pvs := c.Typed().CoreV1().PersistentVolumes()
	mk := func(v Volume, claim *corev1.ObjectReference, phase corev1.PersistentVolumePhase, ours bool) {
		pv := PersistentVolume(v, DefaultStorageClass)
		pv.Spec.ClaimRef = claim
		if !ours {
			pv.Labels = nil
		}
		got, err := pvs.Create(ctx, pv, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		got.Status.Phase = phase
		if _, err := pvs.UpdateStatus(ctx, got, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	mk(Volume{Node: "w9", VG: "vg", LV: "old", MountPath: "/m/1", SizeBytes: 1 << 30}, nil, corev1.VolumeAvailable, true)
	mk(Volume{Node: "w9", VG: "vg", LV: "used", MountPath: "/m/2", SizeBytes: 1 << 30},
		&corev1.ObjectReference{Kind: "PersistentVolumeClaim", Namespace: "default", Name: "data"}, corev1.VolumeBound, true)
	mk(Volume{Node: "w9", VG: "vg", LV: "foreign", MountPath: "/m/3", SizeBytes: 1 << 30}, nil, corev1.VolumeAvailable, false)
	expected := map[string]bool{PVName(v1): true, PVName(v2): true}
	c = connect() // a new run

	// A claimed PV whose volume moved is kept, with a warning.
	usedMoved, _ := kube.ToUnstructured(PersistentVolume(Volume{Node: "w9", VG: "vg", LV: "used", MountPath: "/m/9", SizeBytes: 1 << 30}, DefaultStorageClass))
	if ch, err := ApplyPVs(ctx, c, []*unstructured.Unstructured{usedMoved}, false); err != nil || ch.Needed ||
		len(ch.Warnings) != 1 || !strings.Contains(ch.Warnings[0], "claim default/data") {
		t.Errorf("claimed PV whose volume moved: %+v, %v; want no change and a warning naming the claim", ch, err)
	}

	for i, dryRun := range []bool{true, false, true} {
		ch, err := Prune(ctx, c, expected, dryRun)
		if err != nil {
			t.Fatal(err)
		}
		var want []string
		if i < 2 {
			want = []string{"- delete PersistentVolume w9-vg-old (Available, not in the inventory)"}
		}
		if !reflect.DeepEqual(ch.Diff, want) || ch.Needed != (want != nil) {
			t.Errorf("prune %d: %q (needed %v), want %q", i, ch.Diff, ch.Needed, want)
		}
		if len(ch.Warnings) != 1 || !strings.Contains(ch.Warnings[0], "w9-vg-used") || !strings.Contains(ch.Warnings[0], "default/data") {
			t.Errorf("prune %d: warnings %q, want one naming w9-vg-used and default/data", i, ch.Warnings)
		}
		list, err := pvs.List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, pv := range list.Items {
			if pv.DeletionTimestamp == nil { // deleted: gone once its finalizer is
				names = append(names, pv.Name)
			}
		}
		if has := slices.Contains(names, "w9-vg-old"); has != (i == 0) {
			t.Errorf("prune %d: w9-vg-old present %v in %v", i, has, names)
		}
		for _, keep := range []string{"w1-vg-lv01", "w1-vg-lv02", "w9-vg-used", "w9-vg-foreign"} {
			if !slices.Contains(names, keep) {
				t.Errorf("prune %d deleted %s", i, keep)
			}
		}
	}
}

// pvProtection does the pv-protection controller's part (there is no
// kube-controller-manager here): a deleted PV without a claim goes.
func pvProtection(ctx context.Context, c *kube.Client) {
	pvs := c.Typed().CoreV1().PersistentVolumes()
	for ctx.Err() == nil {
		list, err := pvs.List(ctx, metav1.ListOptions{})
		if err == nil {
			for _, pv := range list.Items {
				if pv.DeletionTimestamp != nil && pv.Spec.ClaimRef == nil && len(pv.Finalizers) > 0 {
					_, _ = pvs.Patch(ctx, pv.Name, types.MergePatchType, []byte(`{"metadata":{"finalizers":null}}`), metav1.PatchOptions{})
				}
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// A volume group waits for its node's packages only when the graph
// installs them (a bundle built with --no-packages has no such step), and
// for its node's connection check.
func TestStepsPackagesDep(t *testing.T) {
	cl := volumesCluster()
	n := cl.Workers[0]
	vgDeps := func(existing []*steps.Step) []string {
		for _, s := range Steps(cl, "/art", existing) {
			if strings.HasPrefix(s.ID, "storage/vg-") && s.Host == n.Name {
				return s.Deps
			}
		}
		t.Fatal("no volume group step")
		return nil
	}
	if d := vgDeps(nil); len(d) != 0 {
		t.Errorf("without a packages step: deps %v", d)
	}
	pk := &steps.Step{ID: steps.ID("prepare/packages", n.Name)}
	if d := vgDeps([]*steps.Step{pk}); len(d) != 1 || d[0] != pk.ID {
		t.Errorf("with a packages step: deps %v", d)
	}
	// Its host's connection check first, packages or not: an unreachable
	// host blocks it (a newcomer's plan saw it fail a second time).
	conn := &steps.Step{ID: steps.ID("preflight/connect", n.Name)}
	if d := vgDeps([]*steps.Step{conn}); len(d) != 1 || d[0] != conn.ID {
		t.Errorf("with a connect step: deps %v", d)
	}
}
