package kubeadm

import (
	"strings"
	"testing"
)

func TestClassify(t *testing.T) {
	const (
		kubeconf = "/etc/kubernetes/kubelet.conf"
		kcfg     = "/var/lib/kubelet/config.yaml"
		apisrv   = "/etc/kubernetes/manifests/kube-apiserver.yaml"
		apicrt   = "/etc/kubernetes/pki/apiserver.crt"
		boot     = "/etc/kubernetes/bootstrap-kubelet.conf"
	)
	for _, tc := range []struct {
		name  string
		files []string
		role  string
		cp    bool
		want  NodeState
		err   string
	}{
		{"nothing", nil, "", true, Fresh, ""},
		{"nothing, worker", nil, "", false, Fresh, ""},
		{"control plane joined", []string{apicrt, apisrv, kcfg, kubeconf}, RoleControlPlane, true, Joined, ""},
		{"worker joined", []string{kcfg, kubeconf}, RoleWorker, false, Joined, ""},
		{"init failed after kubelet-start", []string{apicrt, apisrv, kcfg, kubeconf}, "", true, Partial, ""},
		{"init stopped after the static pods", []string{apicrt, apisrv}, "", true, Partial, ""},
		{"join stopped in TLS bootstrap", []string{boot, kcfg}, "", false, Partial, ""},
		{"certificates only", []string{apicrt}, "", true, Partial, ""},
		{"marker left, files gone", nil, RoleWorker, false, Partial, ""},
		{"control plane node that is a worker", []string{kcfg, kubeconf}, RoleWorker, true, Joined, "cannot promote a worker"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := strings.Join(tc.files, "\n") + "\nrole=" + tc.role + "\nkubelet=active\n"
			f := ParseFacts(out)
			if !f.KubeletActive || len(f.Files) != len(tc.files) || f.Role != tc.role {
				t.Fatalf("ParseFacts(%q) = %+v", out, f)
			}
			got, err := Classify(f, tc.cp)
			if got != tc.want || (err == nil) != (tc.err == "") || (err != nil && !strings.Contains(err.Error(), tc.err)) {
				t.Fatalf("Classify = %s, %v; want %s, error with %q", got, err, tc.want, tc.err)
			}
		})
	}
	if f := ParseFacts("kubelet=activating\n"); f.KubeletActive {
		t.Errorf("activating counted as active")
	}
}

// stateCommand lists exactly the files Classify knows.
func TestStateCommandFiles(t *testing.T) {
	for _, f := range stateFiles {
		if !strings.Contains(stateCommand, " "+f+" ") && !strings.Contains(stateCommand, " "+f+";") {
			t.Errorf("stateCommand does not test %s", f)
		}
	}
	if n := strings.Count(stateCommand, " /"); n != len(stateFiles)+1 { // and the marker
		t.Errorf("stateCommand tests %d paths, stateFiles has %d", n, len(stateFiles))
	}
}
