package network

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// render writes objs as multi-document YAML, as a reader would check them.
func render(t *testing.T, objs []*unstructured.Unstructured) []byte {
	t.Helper()
	var out bytes.Buffer
	for i, o := range objs {
		b, err := yaml.Marshal(o.Object)
		if err != nil {
			t.Fatal(err)
		}
		if i > 0 {
			out.WriteString("---\n")
		}
		out.Write(b)
	}
	return out.Bytes()
}

func TestObjectsGolden(t *testing.T) {
	for _, tc := range []struct {
		name string
		p    Params
	}{
		{"bundled", Params{PodSubnet: "10.233.64.0/18", Bundled: true}},
		{"online-nftables", Params{PodSubnet: "10.244.0.0/16", EnableNFTables: true,
			FlannelImage: "registry.example/flannel:dev", NetpolImage: "registry.example/netpol:dev"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			objs, err := Objects(tc.p)
			if err != nil {
				t.Fatal(err)
			}
			got := render(t, objs)
			checkGolden(t, filepath.Join("testdata", tc.name+".yaml"), got)
		})
	}
}

// TestObjectsStrict decodes every object strictly into its k8s.io/api type:
// an unknown or misspelt field fails, as the API server's strict field
// validation would. (No kube-apiserver runs in unit tests.)
func TestObjectsStrict(t *testing.T) {
	objs, err := Objects(Params{PodSubnet: "10.233.64.0/18", Bundled: true})
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]func() any{
		"Namespace":          func() any { return &corev1.Namespace{} },
		"ServiceAccount":     func() any { return &corev1.ServiceAccount{} },
		"ConfigMap":          func() any { return &corev1.ConfigMap{} },
		"ClusterRole":        func() any { return &rbacv1.ClusterRole{} },
		"ClusterRoleBinding": func() any { return &rbacv1.ClusterRoleBinding{} },
		"DaemonSet":          func() any { return &appsv1.DaemonSet{} },
	}
	var names []string
	for _, o := range objs {
		ref := o.GetKind() + " " + o.GetNamespace() + "/" + o.GetName()
		names = append(names, ref)
		mk, ok := kinds[o.GetKind()]
		if !ok {
			t.Fatalf("%s: unexpected kind", ref)
		}
		b, err := json.Marshal(o.Object)
		if err != nil {
			t.Fatal(err)
		}
		if err := yaml.UnmarshalStrict(b, mk()); err != nil {
			t.Errorf("%s: %v", ref, err)
		}
		if _, ok := o.Object["status"]; ok {
			t.Errorf("%s: has a status", ref)
		}
		if strings.Contains(string(b), "creationTimestamp") {
			t.Errorf("%s: has a creationTimestamp", ref)
		}
	}
	want := []string{
		"Namespace /kube-flannel", "ServiceAccount kube-flannel/flannel", "ClusterRole /flannel",
		"ClusterRoleBinding /flannel", "ConfigMap kube-flannel/kube-flannel-cfg", "DaemonSet kube-flannel/kube-flannel-ds",
		"ServiceAccount kube-system/kube-network-policies", "ClusterRole /kube-network-policies",
		"ClusterRoleBinding /kube-network-policies", "DaemonSet kube-system/kube-network-policies",
	}
	if strings.Join(names, "\n") != strings.Join(want, "\n") {
		t.Errorf("objects:\n%s\nwant:\n%s", strings.Join(names, "\n"), strings.Join(want, "\n"))
	}
}

func TestObjectsFields(t *testing.T) {
	for _, tc := range []struct {
		name       string
		p          Params
		pull       string
		netConf    string
		flannelImg string
		resync     string // the --iptables-resync flag, or ""
	}{
		{"bundled", Params{PodSubnet: "10.233.64.0/18", Bundled: true}, "Never",
			`{"Network":"10.233.64.0/18","EnableNFTables":false,"Backend":{"Type":"vxlan"}}`, DefaultFlannelImage, ""},
		{"online", Params{PodSubnet: "10.244.0.0/16", EnableNFTables: true, FlannelImage: "x/f:1", IPTablesResync: time.Minute}, "IfNotPresent",
			`{"Network":"10.244.0.0/16","EnableNFTables":true,"Backend":{"Type":"vxlan"}}`, "x/f:1", ""},
		{"resync", Params{PodSubnet: "10.233.64.0/18", IPTablesResync: 5 * time.Minute}, "IfNotPresent",
			`{"Network":"10.233.64.0/18","EnableNFTables":false,"Backend":{"Type":"vxlan"}}`, DefaultFlannelImage, "--iptables-resync=300"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			objs, err := Objects(tc.p)
			if err != nil {
				t.Fatal(err)
			}
			for _, o := range objs {
				switch o.GetKind() {
				case "ConfigMap":
					got, _, _ := unstructured.NestedString(o.Object, "data", "net-conf.json")
					var a, b any
					if err := json.Unmarshal([]byte(got), &a); err != nil {
						t.Fatalf("net-conf.json: %v", err)
					}
					_ = json.Unmarshal([]byte(tc.netConf), &b)
					if ja, jb := mustJSON(a), mustJSON(b); ja != jb {
						t.Errorf("net-conf.json = %s, want %s", ja, jb)
					}
				case "DaemonSet":
					ds := &appsv1.DaemonSet{}
					b, _ := json.Marshal(o.Object)
					if err := json.Unmarshal(b, ds); err != nil {
						t.Fatal(err)
					}
					ps := ds.Spec.Template.Spec
					c := ps.Containers[0]
					if string(c.ImagePullPolicy) != tc.pull {
						t.Errorf("%s: imagePullPolicy %s, want %s", ds.Name, c.ImagePullPolicy, tc.pull)
					}
					if !ps.HostNetwork || ps.PriorityClassName != "system-node-critical" ||
						len(ps.Tolerations) != 1 || ps.Tolerations[0].Operator != corev1.TolerationOpExists || ps.Tolerations[0].Effect != "" {
						t.Errorf("%s: not a node agent on every node: %+v", ds.Name, ps)
					}
					if ds.Name == FlannelDaemonSet && c.Image != tc.flannelImg {
						t.Errorf("flannel image %s, want %s", c.Image, tc.flannelImg)
					}
					if ds.Name == FlannelDaemonSet {
						var resync string
						for _, a := range c.Args {
							if strings.HasPrefix(a, "--iptables-resync") {
								resync = a
							}
						}
						if resync != tc.resync {
							t.Errorf("flannel's resync flag %q, want %q (args %q)", resync, tc.resync, c.Args)
						}
					}
				}
			}
		})
	}
}

func mustJSON(v any) string { b, _ := json.Marshal(v); return string(b) }

func TestObjectsBadSubnet(t *testing.T) {
	for _, s := range []string{"", "10.233.64.0", "10.233.64.1/18", "fd00::/64", "10.300.0.0/16"} {
		if _, err := Objects(Params{PodSubnet: s}); err == nil || !strings.Contains(err.Error(), "kube_pods_subnet") {
			t.Errorf("PodSubnet %q: error %v, want one naming kube_pods_subnet", s, err)
		}
	}
}

func TestCheckPlugin(t *testing.T) {
	for name, ok := range map[string]bool{"": true, "flannel": true, "calico": false, "kube-router": false, "Flannel": false} {
		if err := CheckPlugin(name); (err == nil) != ok {
			t.Errorf("CheckPlugin(%q) = %v, want ok=%v", name, err, ok)
		}
	}
}

func TestImages(t *testing.T) {
	got := Images(Params{NetpolImage: "x/n:1"})
	if len(got) != 2 || got[0] != DefaultFlannelImage || got[1] != "x/n:1" {
		t.Errorf("Images = %v", got)
	}
}

// checkGolden compares got with the golden file (rewritten with -update).
func checkGolden(t *testing.T, golden string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (run with -update if the change is wanted):\n%s", golden, got)
	}
}
