package verify

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/metalk8s/metalk8s/pkg/lvm"
)

// The volume check's choice of a volume and its giving back, against a
// real kube-apiserver; no PV controller or kubelet runs here, so volume
// phases are set as they would; Host stands in for SSH and records its
// commands. The whole check runs on the lab (make lab-remove-add).
func TestVolumeAPI(t *testing.T) {
	ctx, connect := apiServer(t)
	c := connect()
	api := c.Typed().CoreV1()
	// pv makes a PV of node's on class with phase and, if ns is set,
	// a claim from ns.
	pv := func(name, node, class string, phase corev1.PersistentVolumePhase, ns string, block bool) {
		t.Helper()
		mode := corev1.PersistentVolumeFilesystem
		if block {
			mode = corev1.PersistentVolumeBlock
		}
		v := lvm.PersistentVolume(lvm.Volume{Node: node, VG: "vg", LV: name, MountPath: "/mnt/vg/" + name, SizeBytes: 1 << 30, FSType: "ext4"}, class)
		v.Name, v.Spec.VolumeMode = name, &mode
		if ns != "" {
			v.Spec.ClaimRef = &corev1.ObjectReference{Kind: "PersistentVolumeClaim", Namespace: ns, Name: "volume", UID: types.UID("u-" + ns)}
		}
		got, err := api.PersistentVolumes().Create(ctx, v, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		got.Status.Phase = phase
		if _, err := api.PersistentVolumes().UpdateStatus(ctx, got, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	pv("a-other-class", "node1", "fast", corev1.VolumeAvailable, "", false)
	pv("b-bound", "node1", lvm.DefaultStorageClass, corev1.VolumeBound, "apps", false)
	pv("c-node9", "node9", lvm.DefaultStorageClass, corev1.VolumeAvailable, "", false)
	pv("d-block", "node1", lvm.DefaultStorageClass, corev1.VolumeAvailable, "", true)
	pv("e-free", "node2", lvm.DefaultStorageClass, corev1.VolumeAvailable, "", false)
	pv("f-free", "node1", lvm.DefaultStorageClass, corev1.VolumeAvailable, "", false)
	pv("g-left", "node1", lvm.DefaultStorageClass, corev1.VolumeReleased, NamespacePrefix+"gone", false)
	pv("h-other-released", "node1", lvm.DefaultStorageClass, corev1.VolumeReleased, "apps", false)
	pv("i-live-run", "node2", lvm.DefaultStorageClass, corev1.VolumeReleased, NamespacePrefix+"live", false)
	if _, err := api.Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: NamespacePrefix + "live"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	claim := func(name string) string {
		got, err := api.PersistentVolumes().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got.Spec.ClaimRef == nil {
			return ""
		}
		return got.Spec.ClaimRef.Namespace
	}

	var mu sync.Mutex
	var ran []string
	cl := Cluster{Client: c, Host: func(_ context.Context, node, cmd string) ([]byte, error) {
		mu.Lock()
		defer mu.Unlock()
		ran = append(ran, node+": "+cmd)
		return nil, nil
	}}

	// The first free one, by name, of the class, on a given node, not Block.
	got, err := cl.freeVolume(ctx, []string{"node1", "node2"})
	if err != nil || got == nil || got.Name != "e-free" {
		t.Fatalf("freeVolume: %v %v, want e-free", got, err)
	}
	if got, err := cl.freeVolume(ctx, []string{"node3"}); got != nil || err != nil {
		t.Errorf("freeVolume on node3: %v %v, want none", got, err)
	}

	// A killed run's volume: its file removed on its node, then its claim
	// cleared; a live run's and an application's are left alone.
	cl.sweepVolumes(ctx)
	if want := "node1: rm -f -- /mnt/vg/g-left/" + NamespacePrefix + "gone"; strings.Join(ran, "\n") != want {
		t.Errorf("sweep ran %q, want %q", ran, want)
	}
	if ns := claim("g-left"); ns != "" {
		t.Errorf("g-left still claimed from %s", ns)
	}
	if claim("h-other-released") != "apps" || claim("i-live-run") != NamespacePrefix+"live" || claim("b-bound") != "apps" {
		t.Errorf("sweep changed others' volumes")
	}
	// Without access to the nodes, nothing is swept (the file would stay).
	pv("j-left", "node1", lvm.DefaultStorageClass, corev1.VolumeReleased, NamespacePrefix+"gone2", false)
	Cluster{Client: c}.sweepVolumes(ctx)
	if claim("j-left") == "" {
		t.Errorf("j-left unclaimed without Host")
	}

	// An interrupted check: its file removed, its volume given back once
	// Released (the PV controller's part, done here).
	ran = nil
	e := &podEnv{c: cl, ns: NamespacePrefix + "live", pv: "i-live-run", pvNode: "node2", pvFile: "/mnt/vg/i-live-run/" + NamespacePrefix + "live"}
	if err := e.releaseVolume(ctx); err != nil || e.pv != "" || e.pvFile != "" {
		t.Errorf("releaseVolume: %v, pv %q file %q", err, e.pv, e.pvFile)
	}
	if want := "node2: rm -f -- /mnt/vg/i-live-run/" + NamespacePrefix + "live"; strings.Join(ran, "\n") != want {
		t.Errorf("release ran %q, want %q", ran, want)
	}
	if ns := claim("i-live-run"); ns != "" {
		t.Errorf("i-live-run still claimed from %s", ns)
	}
	// Still Bound (its claim not yet gone): an error naming the volume.
	if err := cl.unclaim(ctx, "b-bound", "apps", 3*time.Second); err == nil || !strings.Contains(err.Error(), "b-bound not made Available again") {
		t.Errorf("unclaim of a Bound volume: %v", err)
	}
	// Claimed from elsewhere: untouched.
	if err := cl.unclaim(ctx, "h-other-released", NamespacePrefix+"x", time.Second); err != nil || claim("h-other-released") != "apps" {
		t.Errorf("unclaim of another's volume: %v", err)
	}
}

// The volume pods: mounttest as root with only CAP_DAC_OVERRIDE and no
// fsGroup (which would change the group of the operator's files).
func TestVolumePod(t *testing.T) {
	p := Cluster{TestImage: "img"}.volumePod("volume-write", "node2", "--new_file_0644=/data/x")
	ctr := p.Spec.Containers[0]
	if p.Spec.NodeName != "node2" || strings.Join(ctr.Args, " ") != "mounttest --new_file_0644=/data/x" ||
		p.Spec.SecurityContext.FSGroup != nil || *p.Spec.SecurityContext.RunAsUser != 0 ||
		len(ctr.SecurityContext.Capabilities.Add) != 1 || ctr.SecurityContext.Capabilities.Add[0] != "DAC_OVERRIDE" ||
		p.Spec.Volumes[0].PersistentVolumeClaim.ClaimName != "volume" || ctr.VolumeMounts[0].MountPath != volumeMount {
		t.Errorf("volume pod: %+v", p.Spec)
	}
}
