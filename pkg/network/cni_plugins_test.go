package network

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/metalk8s/metalk8s/internal/testpeer"
)

// TestCNIConfigRealPlugins runs the conflist through the real bridge,
// host-local and portmap plugins, as a container runtime would (CNI spec
// 1.0.0: each plugin gets its config plus name, cniVersion and the previous
// result), between two throwaway network namespaces, then deletes it. It
// needs root and the three plugins (built from
// github.com/containernetworking/plugins): METALK8S_CNI_BIN, else the lab's
// artifacts (.cache/artifacts/*/bin/cni, test/lab/artifacts/build.sh cni).
// Only change to the config under test: host-local's dataDir goes to a
// temporary folder instead of /var/lib/cni/networks.
func TestCNIConfigRealPlugins(t *testing.T) {
	bin := os.Getenv("METALK8S_CNI_BIN")
	if bin == "" {
		found, _ := filepath.Glob("../../.cache/artifacts/*/bin/cni/bridge")
		if len(found) > 0 {
			bin = filepath.Dir(found[len(found)-1])
		}
	}
	testpeer.Root(t, "the CNI plugins run in a network namespace")
	if bin == "" {
		testpeer.Missing(t, "the CNI plugins", "set METALK8S_CNI_BIN, or build the lab's artifacts: test/lab/artifacts/build.sh cni")
	}
	conf, err := CNIConfig("10.233.65.0/24", 0)
	if err != nil {
		t.Fatal(err)
	}
	var list struct {
		CNIVersion string           `json:"cniVersion"`
		Name       string           `json:"name"`
		Plugins    []map[string]any `json:"plugins"`
	}
	if err := json.Unmarshal(conf, &list); err != nil {
		t.Fatal(err)
	}
	list.Plugins[0]["ipam"].(map[string]any)["dataDir"] = t.TempDir()

	host, pod := fmt.Sprintf("mk8s-cnihost-%d", os.Getpid()), fmt.Sprintf("mk8s-cnipod-%d", os.Getpid())
	for _, ns := range []string{host, pod} {
		run(t, "ip", "netns", "add", ns)
		t.Cleanup(func() { _ = exec.Command("ip", "netns", "delete", ns).Run() })
	}
	plugin := func(cmd string, conf map[string]any, prev json.RawMessage) json.RawMessage {
		t.Helper()
		c := map[string]any{"name": list.Name, "cniVersion": list.CNIVersion}
		for k, v := range conf {
			c[k] = v
		}
		if prev != nil {
			c["prevResult"] = prev
		}
		in, _ := json.Marshal(c)
		x := exec.Command("ip", "netns", "exec", host, filepath.Join(bin, conf["type"].(string)))
		x.Env = append(os.Environ(), "CNI_COMMAND="+cmd, "CNI_CONTAINERID=metalk8s-test",
			"CNI_NETNS=/run/netns/"+pod, "CNI_IFNAME=eth0", "CNI_PATH="+bin)
		x.Stdin = bytes.NewReader(in)
		var out, errb bytes.Buffer
		x.Stdout, x.Stderr = &out, &errb
		if err := x.Run(); err != nil {
			t.Fatalf("%s %s: %v\nstdin %s\nstdout %s\nstderr %s", cmd, conf["type"], err, in, out.String(), errb.String())
		}
		return out.Bytes()
	}
	var prev json.RawMessage
	for _, p := range list.Plugins {
		prev = plugin("ADD", p, prev)
	}
	t.Cleanup(func() {
		for i := len(list.Plugins) - 1; i >= 0; i-- {
			plugin("DEL", list.Plugins[i], prev)
		}
	})

	var res struct {
		IPs []struct{ Address, Gateway string } `json:"ips"`
	}
	if err := json.Unmarshal(prev, &res); err != nil || len(res.IPs) != 1 {
		t.Fatalf("result %s: %v", prev, err)
	}
	addr := netip.MustParsePrefix(res.IPs[0].Address)
	if !netip.MustParsePrefix("10.233.65.0/24").Contains(addr.Addr()) || res.IPs[0].Gateway != "10.233.65.1" {
		t.Errorf("pod address %s gateway %s, want in 10.233.65.0/24 via 10.233.65.1", res.IPs[0].Address, res.IPs[0].Gateway)
	}
	if out := run(t, "ip", "-n", pod, "-o", "link", "show", "eth0"); !strings.Contains(out, "mtu 1450") {
		t.Errorf("pod eth0: %s, want mtu 1450", out)
	}
	if out := run(t, "ip", "-n", pod, "route", "show", "default"); !strings.Contains(out, "via 10.233.65.1") {
		t.Errorf("pod default route %q, want via 10.233.65.1", out)
	}
	if out := run(t, "ip", "-n", host, "-o", "addr", "show", "cni0"); !strings.Contains(out, "10.233.65.1/24") {
		t.Errorf("host cni0: %s, want 10.233.65.1/24", out)
	}
	if out := run(t, "ip", "-n", host, "-d", "link", "show", "master", "cni0"); !strings.Contains(out, "hairpin on") {
		t.Errorf("bridge port: %s, want hairpin on", out)
	}
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}
