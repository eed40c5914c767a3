package verify

import (
	"context"
	"errors"
	"fmt"
	"path"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	"github.com/metalk8s/metalk8s/pkg/lvm"
	"github.com/metalk8s/metalk8s/pkg/ssh"
)

// The volume check claims one of the inventory's PersistentVolumes that
// no one has claimed (class lvm.DefaultStorageClass, Available, on a
// schedulable node) by name, has a pod write a file on it (agnhost
// mounttest) and a second pod read it back, then finds the file on the
// node's mount of the volume over SSH and removes it there. The claim is
// then deleted and the volume made Available again: its reclaim policy
// (Retain) would otherwise leave it Released, unusable. Nothing else on
// the volume is read or changed.
const (
	volumeCheck   = "volume-write-read"
	volumeMount   = "/data"
	volumeContent = "mount-tester new file\n" // what mounttest --new_file_0644 writes
)

// volumeSkippedNoHost: Cluster.Host is nil.
const volumeSkippedNoHost = "not run: no access to the nodes to remove its file from the volume afterwards"

// volumeWriteRead is the volume check (see above).
func (e *podEnv) volumeWriteRead(ctx context.Context) (string, string, error) {
	if e.c.Host == nil {
		return Skip, volumeSkippedNoHost, nil
	}
	pv, err := e.c.freeVolume(ctx, e.nodes)
	if err != nil || pv == nil {
		return Skip, fmt.Sprintf("no PersistentVolume of class %s Available on a schedulable node (each is claimed, or the inventory has no volumes)", lvm.DefaultStorageClass), err
	}
	node := pv.Labels[lvm.LabelNode]
	e.pv, e.pvNode, e.pvFile = pv.Name, node, path.Join(pv.Spec.Local.Path, e.ns)
	api := e.c.Client.Typed().CoreV1()
	pvc := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: "volume"},
		Spec: corev1.PersistentVolumeClaimSpec{
			VolumeName:       pv.Name,
			StorageClassName: ptr.To(pv.Spec.StorageClassName),
			AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			VolumeMode:       ptr.To(corev1.PersistentVolumeFilesystem),
			Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{
				corev1.ResourceStorage: pv.Spec.Capacity[corev1.ResourceStorage]}},
		},
	}
	if _, err := api.PersistentVolumeClaims(e.ns).Create(ctx, pvc, metav1.CreateOptions{}); err != nil {
		return "", "", fmt.Errorf("PersistentVolumeClaim for %s: %w", pv.Name, err)
	}
	err = until(ctx, func() (bool, error) {
		got, err := api.PersistentVolumeClaims(e.ns).Get(ctx, "volume", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		return got.Status.Phase == corev1.ClaimBound, fmt.Errorf("claim %s", got.Status.Phase)
	})
	if err != nil {
		return Fail, fmt.Sprintf("a claim of PersistentVolume %s was not bound: %v", pv.Name, err), nil
	}
	file := path.Join(volumeMount, e.ns)
	if out, err := e.runToEnd(ctx, e.c.volumePod("volume-write", node, "--new_file_0644="+file)); err != nil {
		return Fail, fmt.Sprintf("a pod on %s could not write %s on PersistentVolume %s: %v", node, file, pv.Name, err), nil
	} else if !strings.Contains(out, volumeContent) {
		return Fail, fmt.Sprintf("a pod on %s wrote %s on PersistentVolume %s but read back %q", node, file, pv.Name, out), nil
	}
	if out, err := e.runToEnd(ctx, e.c.volumePod("volume-read", node, "--file_content="+file)); err != nil || !strings.Contains(out, volumeContent) {
		return Fail, fmt.Sprintf("a second pod on %s did not read back %s on PersistentVolume %s: %q %v", node, file, pv.Name, out, err), nil
	}
	got, err := e.c.Host(ctx, node, "cat -- "+ssh.Quote(e.pvFile)+" && rm -f -- "+ssh.Quote(e.pvFile))
	if err != nil {
		return Fail, fmt.Sprintf("the file the pods wrote on PersistentVolume %s is not at %s on %s: %v", pv.Name, e.pvFile, node, err), nil
	}
	if string(got) != volumeContent {
		return Fail, fmt.Sprintf("%s on %s holds %q, not what the pods wrote", e.pvFile, node, got), nil
	}
	e.pvFile = ""
	if err := e.releaseVolume(ctx); err != nil {
		return Fail, err.Error(), nil
	}
	return Pass, fmt.Sprintf("a pod on %s wrote on PersistentVolume %s, a second one read it back, %s had it at %s (removed); the volume is Available again",
		node, pv.Name, node, path.Join(pv.Spec.Local.Path, e.ns)), nil
}

// freeVolume is the first (by name) PersistentVolume of the inventory's
// class that is Available, unclaimed and on one of nodes; nil when none.
func (c Cluster) freeVolume(ctx context.Context, nodes []string) (*corev1.PersistentVolume, error) {
	pvs, err := c.Client.Typed().CoreV1().PersistentVolumes().List(ctx, metav1.ListOptions{LabelSelector: lvm.LabelNode})
	if err != nil {
		return nil, fmt.Errorf("persistent volumes: %w", err)
	}
	on := map[string]bool{}
	for _, n := range nodes {
		on[n] = true
	}
	sort.Slice(pvs.Items, func(i, j int) bool { return pvs.Items[i].Name < pvs.Items[j].Name })
	for i := range pvs.Items {
		pv := &pvs.Items[i]
		if pv.Spec.StorageClassName == lvm.DefaultStorageClass && pv.Status.Phase == corev1.VolumeAvailable &&
			pv.Spec.ClaimRef == nil && pv.Spec.Local != nil && on[pv.Labels[lvm.LabelNode]] &&
			(pv.Spec.VolumeMode == nil || *pv.Spec.VolumeMode == corev1.PersistentVolumeFilesystem) {
			return pv, nil
		}
	}
	return nil, nil
}

// volumePod is agnhost mounttest with args on node, the claim "volume"
// at volumeMount. It runs as root, which owns a new volume's top
// directory, with only CAP_DAC_OVERRIDE (for a top directory the
// operator gave to another user), and no fsGroup: the kubelet would
// change the group of everything on the volume.
func (c Cluster) volumePod(name, node string, args ...string) *corev1.Pod {
	p := c.pod(name, node, &corev1.PodSecurityContext{RunAsUser: ptr.To[int64](0)}, corev1.Container{
		Name:         "mounttest",
		Args:         append([]string{"mounttest"}, args...),
		VolumeMounts: []corev1.VolumeMount{{Name: "volume", MountPath: volumeMount}},
		SecurityContext: &corev1.SecurityContext{AllowPrivilegeEscalation: ptr.To(false),
			Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}, Add: []corev1.Capability{"DAC_OVERRIDE"}}},
	})
	p.Spec.Volumes = []corev1.Volume{{Name: "volume", VolumeSource: corev1.VolumeSource{
		PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "volume"}}}}
	return p
}

// runToEnd creates pod, waits PodsReadyTimeout for it to end and returns
// its log; an error when it failed (with its log) or did not end.
func (e *podEnv) runToEnd(ctx context.Context, pod *corev1.Pod) (string, error) {
	api := e.c.Client.Typed().CoreV1().Pods(e.ns)
	if _, err := api.Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		return "", fmt.Errorf("pod %s: %w", pod.Name, err)
	}
	wctx, cancel := context.WithTimeout(ctx, PodsReadyTimeout)
	defer cancel()
	for {
		got, err := api.Get(wctx, pod.Name, metav1.GetOptions{})
		if err == nil {
			switch st := podState(got); {
			case got.Status.Phase == corev1.PodSucceeded || got.Status.Phase == corev1.PodFailed:
				raw, lerr := api.GetLogs(pod.Name, &corev1.PodLogOptions{}).DoRaw(ctx)
				if lerr != nil {
					return "", fmt.Errorf("pod %s %s, its log: %w", pod.Name, got.Status.Phase, lerr)
				}
				if got.Status.Phase == corev1.PodFailed {
					return string(raw), fmt.Errorf("pod %s failed: %s", pod.Name, strings.TrimSpace(string(raw)))
				}
				return string(raw), nil
			case imageMissing[st]:
				return "", e.c.imageMissingError(got.Spec.NodeName, st)
			default:
				err = fmt.Errorf("pod %s: %s", pod.Name, st)
			}
		}
		select {
		case <-wctx.Done():
			return "", fmt.Errorf("not done after %s: %v", PodsReadyTimeout, err)
		case <-time.After(2 * time.Second):
		}
	}
}

// releaseVolume removes the file left by an interrupted check (if any),
// deletes the check's pods and claim, waits for the volume to be
// Released and clears its claimRef, so that it is Available again.
func (e *podEnv) releaseVolume(ctx context.Context) error {
	if e.pv == "" {
		return nil
	}
	api := e.c.Client.Typed().CoreV1()
	var errs []error
	if e.pvFile != "" {
		if _, err := e.c.Host(ctx, e.pvNode, "rm -f -- "+ssh.Quote(e.pvFile)); err != nil {
			errs = append(errs, fmt.Errorf("%s on %s left behind (remove it): %w", e.pvFile, e.pvNode, err))
		} else {
			e.pvFile = ""
		}
	}
	for _, p := range []string{"volume-write", "volume-read"} {
		if err := api.Pods(e.ns).Delete(ctx, p, metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)}); err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("pod %s: %w", p, err))
		}
	}
	if err := api.PersistentVolumeClaims(e.ns).Delete(ctx, "volume", metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		errs = append(errs, fmt.Errorf("claim of %s: %w", e.pv, err))
	}
	if err := e.c.unclaim(ctx, e.pv, e.ns, SettleTimeout); err != nil {
		errs = append(errs, err)
	} else {
		e.pv = ""
	}
	return errors.Join(errs...)
}

// unclaim waits up to wait for PersistentVolume name, claimed from
// namespace ns, to be Released (its claim deleted), then clears its
// claimRef: the PV controller makes it Available. Nothing is done to a
// volume claimed from elsewhere, or unclaimed.
func (c Cluster) unclaim(ctx context.Context, name, ns string, wait time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	api := c.Client.Typed().CoreV1().PersistentVolumes()
	for {
		pv, err := api.Get(ctx, name, metav1.GetOptions{})
		if err == nil {
			ref := pv.Spec.ClaimRef
			if ref == nil || ref.Namespace != ns {
				return nil
			}
			if pv.Status.Phase == corev1.VolumeReleased {
				patch := fmt.Sprintf(`[{"op":"test","path":"/spec/claimRef/uid","value":%q},{"op":"remove","path":"/spec/claimRef"}]`, ref.UID)
				if _, err = api.Patch(ctx, name, types.JSONPatchType, []byte(patch), metav1.PatchOptions{}); err == nil {
					return nil
				}
			} else {
				err = fmt.Errorf("it is %s", pv.Status.Phase)
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("PersistentVolume %s not made Available again after %s (%v): clear its spec.claimRef", name, wait, err)
		case <-time.After(2 * time.Second):
		}
	}
}

// sweepVolumes makes Available again the volumes a killed run left
// claimed: Released, claimed from a verify namespace that is gone, on a
// node that answers: the run's file is removed first. Without Host none is.
func (c Cluster) sweepVolumes(ctx context.Context) {
	pvs, err := c.Client.Typed().CoreV1().PersistentVolumes().List(ctx, metav1.ListOptions{LabelSelector: lvm.LabelNode})
	if err != nil {
		return
	}
	for _, pv := range pvs.Items {
		ref := pv.Spec.ClaimRef
		if ref == nil || pv.Status.Phase != corev1.VolumeReleased || !strings.HasPrefix(ref.Namespace, NamespacePrefix) || pv.Spec.Local == nil {
			continue
		}
		if _, err := c.Client.Typed().CoreV1().Namespaces().Get(ctx, ref.Namespace, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			continue
		}
		if c.Host == nil {
			continue
		}
		if _, err := c.Host(ctx, pv.Labels[lvm.LabelNode], "rm -f -- "+ssh.Quote(path.Join(pv.Spec.Local.Path, ref.Namespace))); err != nil {
			continue
		}
		_ = c.unclaim(ctx, pv.Name, ref.Namespace, time.Second)
	}
}
