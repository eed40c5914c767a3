package kubeadm

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/metalk8s/metalk8s/pkg/ssh"
)

var testBackends = []Backend{{"node2", "10.10.0.12", 6443}, {"node1", "10.10.0.11", 6443}, {"node3", "fd00::13", 6443}}

// The configuration is accepted by the real haproxy (`haproxy -c`), lists
// every backend once with its health check, in name order.
func TestProxyConfig(t *testing.T) {
	cfg, err := ProxyConfig(testBackends)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"bind 127.0.0.1:6443", "option httpchk GET /readyz", "check-ssl verify none",
		"server node1 10.10.0.11:6443\n  server node2 10.10.0.12:6443\n  server node3 [fd00::13]:6443\n"} {
		if !strings.Contains(string(cfg), want) {
			t.Errorf("haproxy.cfg lacks %q:\n%s", want, cfg)
		}
	}
	again, _ := ProxyConfig([]Backend{testBackends[2], testBackends[0], testBackends[1]})
	if !bytes.Equal(cfg, again) {
		t.Errorf("the configuration depends on the backends' order")
	}
	haproxy, err := exec.LookPath("haproxy")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("haproxy is not installed (make deps)")
		}
		t.Skip("haproxy is not installed (make deps): the configuration is not checked by haproxy itself")
	}
	f := filepath.Join(t.TempDir(), "haproxy.cfg")
	os.WriteFile(f, cfg, 0o644)
	if out, err := exec.Command(haproxy, "-c", "-f", f).CombinedOutput(); err != nil {
		t.Fatalf("haproxy -c: %v\n%s\n%s", err, out, cfg)
	}
	// ... which does reject a broken file: the check can fail.
	os.WriteFile(f, append(cfg, []byte("  server bad\n")...), 0o644)
	if err := exec.Command(haproxy, "-c", "-f", f).Run(); err == nil {
		t.Fatal("haproxy -c accepted a server line without an address")
	}
	for _, bad := range [][]Backend{nil, {{"a b", "10.0.0.1", 6443}}, {{"x", "", 6443}}} {
		if _, err := ProxyConfig(bad); err == nil {
			t.Errorf("ProxyConfig(%v) accepted", bad)
		}
	}
}

// The static pod decodes strictly as a Pod, and its annotation follows
// the configuration so the kubelet restarts HAProxy on a change.
func TestProxyManifest(t *testing.T) {
	cfg, _ := ProxyConfig(testBackends)
	data, err := ProxyManifest("docker.io/library/haproxy:2.6.12", corev1.PullNever, cfg)
	if err != nil {
		t.Fatal(err)
	}
	var pod corev1.Pod
	if err := yaml.UnmarshalStrict(data, &pod); err != nil {
		t.Fatalf("%v\n%s", err, data)
	}
	c := pod.Spec.Containers[0]
	if !pod.Spec.HostNetwork || c.ImagePullPolicy != corev1.PullNever || c.Image != "docker.io/library/haproxy:2.6.12" ||
		pod.Spec.Volumes[0].HostPath.Path != filepath.Dir(ProxyConfigFile) || c.VolumeMounts[0].MountPath+"/haproxy.cfg" != c.Command[len(c.Command)-1] {
		t.Errorf("pod:\n%s", data)
	}
	cfg2, _ := ProxyConfig(testBackends[:2])
	data2, _ := ProxyManifest("docker.io/library/haproxy:2.6.12", corev1.PullNever, cfg2)
	if bytes.Equal(data, data2) {
		t.Errorf("the manifest does not change with the configuration")
	}
}

// localHost runs commands with this machine's sh.
type localHost struct{}

func (localHost) Name() string { return "local" }
func (localHost) Run(ctx context.Context, cmd string) ([]byte, error) {
	return exec.CommandContext(ctx, "sh", "-c", cmd).Output()
}
func (localHost) Put(context.Context, ssh.File) (bool, error) { return false, nil }

// The endpoint line is added and replaced, an older line mapping the name
// commented out, the running pods' copies that carry the line follow, every
// other line is kept, through the real sh, awk, grep and mktemp.
func TestEndpointHosts(t *testing.T) {
	oldHosts, oldPods := hostsFile, podHosts
	t.Cleanup(func() { hostsFile, podHosts = oldHosts, oldPods })
	dir := t.TempDir()
	hostsFile = filepath.Join(dir, "hosts")
	podHosts = filepath.Join(dir, "pods", "*", "etc-hosts")
	name := "lb-apiserver.kubernetes.local"
	orig := "127.0.0.1\tlocalhost\n10.10.0.11\tnode1\n# a comment about " + name + "\n"
	os.WriteFile(hostsFile, []byte(orig+"192.0.2.9 "+name+"\n"), 0o644)
	for _, p := range []string{"a", "b"} {
		os.MkdirAll(filepath.Join(dir, "pods", p), 0o755)
	}
	podA, podB := filepath.Join(dir, "pods", "a", "etc-hosts"), filepath.Join(dir, "pods", "b", "etc-hosts")
	os.WriteFile(podA, []byte("127.0.0.1 localhost\n10.10.0.11 "+name+" "+hostsMark+"\n"), 0o644)
	os.WriteFile(podB, []byte("127.0.0.1 localhost\n"), 0o644) // a pod started before metalk8s's line
	ctx := context.Background()
	diff, err := endpointDiff(ctx, localHost{}, name, "127.0.0.1")
	if err != nil || len(diff) != 3 {
		t.Fatalf("before: %v %q; want the older line, /etc/hosts and pod a", err, diff)
	}
	for _, addr := range []string{"10.10.0.12", "127.0.0.1", "127.0.0.1"} {
		if err := setEndpointAddress(ctx, localHost{}, name, addr); err != nil {
			t.Fatal(err)
		}
		if diff, err := endpointDiff(ctx, localHost{}, name, addr); err != nil || len(diff) != 0 {
			t.Fatalf("after setting %s: %q %v", addr, diff, err)
		}
	}
	line := "127.0.0.1 " + name + " " + hostsMark + "\n"
	want := orig + "# 192.0.2.9 " + name + " # metalk8s: the endpoint name is set below\n" + line
	if data, _ := os.ReadFile(hostsFile); string(data) != want {
		t.Errorf("hosts:\n%s\nwant:\n%s", data, want)
	}
	if data, _ := os.ReadFile(podA); string(data) != "127.0.0.1 localhost\n"+line {
		t.Errorf("pod a's hosts:\n%s", data)
	}
	if data, _ := os.ReadFile(podB); string(data) != "127.0.0.1 localhost\n" {
		t.Errorf("pod b's hosts changed:\n%s", data)
	}
	if err := setEndpointAddress(ctx, localHost{}, name, "1.2.3.4 evil"); err == nil {
		t.Errorf("an address with a blank was accepted")
	}
}
