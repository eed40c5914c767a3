package main

import (
	"strings"
	"testing"

	"github.com/metalk8s/metalk8s/pkg/addons"
)

const oneNode = "[kube-master]\nn1 ansible_host=192.0.2.1\n[etcd]\nn1\n[kube-node]\nn1\n[k8s-cluster:children]\nkube-master\nkube-node"

// up and plan refuse to run without a bundle, saying how to make one.
func TestUpNeedsBundle(t *testing.T) {
	isolate(t)
	saved := keepSteps
	keepSteps = nil
	t.Cleanup(func() { keepSteps = saved })
	inv := writeInventory(t, oneNode)
	code, out, errOut := metalk8s(t, "up", inv)
	if code != exitUsage || strings.Count(errOut, "\n") != 1 || !strings.Contains(errOut, "--bundle DIR") ||
		!strings.Contains(errOut, "metalk8s_bundle") || !strings.Contains(errOut, "metalk8s bundle build -o DIR -i "+inv) {
		t.Errorf("up without a bundle: exit %d\n%s%s", code, out, errOut)
	}
	if code, _, errOut := metalk8s(t, "plan", inv); code != exitUsage || !strings.Contains(errOut, "no bundle for "+inv) {
		t.Errorf("plan without a bundle: exit %d %s", code, errOut)
	}
}

// The phases' help names every addon of the catalog.
func TestPhaseHelpAddons(t *testing.T) {
	_, out, _ := metalk8s(t, "plan", "--help")
	for _, a := range addons.Names() {
		if !strings.Contains(out, a) {
			t.Errorf("plan --help does not name addon %s:\n%s", a, out)
		}
	}
}
