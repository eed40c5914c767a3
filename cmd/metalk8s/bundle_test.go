package main

import (
	"strings"
	"testing"
)

func TestBundleVersions(t *testing.T) {
	for _, c := range []struct {
		args    []string
		code    int
		want    []string // lines of stdout
		wantErr string
	}{
		{args: nil, want: []string{"KUBE_VERSION=v1.36.3", "PAUSE_VERSION=3.10.2", "CONTAINERD_VERSION=v2.3.7",
			"IMAGE=registry.k8s.io/coredns/coredns:v1.14.2", "IMAGE=docker.io/library/haproxy:2.6.12"}},
		{args: []string{"--kube-version", "v1.35.4"}, want: []string{"KUBE_VERSION=v1.35.4", "COREDNS_VERSION=v1.13.1",
			"IMAGE=ghcr.io/flannel-io/flannel:v0.28.10", "IMAGE=registry.k8s.io/networking/kube-network-policies:v0.8.0"}},
		{args: []string{"--kube-version", "v1.34.4"}, code: 2, wantErr: "supports Kubernetes v1.35 to v1.37"},
	} {
		code, out, errOut := metalk8s(t, append([]string{"bundle", "versions"}, c.args...)...)
		if code != c.code || !strings.Contains(errOut, c.wantErr) {
			t.Errorf("%v: exit %d, stderr %q", c.args, code, errOut)
		}
		lines := map[string]bool{}
		for _, l := range strings.Split(out, "\n") {
			lines[l] = true
		}
		for _, w := range c.want {
			if !lines[w] {
				t.Errorf("%v: no line %q in\n%s", c.args, w, out)
			}
		}
	}
}
