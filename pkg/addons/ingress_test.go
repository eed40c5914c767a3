package addons

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/metalk8s/metalk8s/assets"
)

// renderAddon renders the catalog's chart name with metalk8s's values
// and over, as FromInventory would.
func renderAddon(t *testing.T, name string, over map[string]any) ([]*unstructured.Unstructured, error) {
	t.Helper()
	for _, c := range catalog {
		if c.name != name {
			continue
		}
		ch, err := LoadChart(assets.Charts, "charts/"+name)
		if err != nil {
			t.Fatal(err)
		}
		return Render(ch, name, c.namespace, "v1.36.3", merge(c.values(testParams(true), allEnabled), over))
	}
	t.Fatalf("no addon %s", name)
	return nil, nil
}

func kinds(objs []*unstructured.Unstructured) map[string]int {
	out := map[string]int{}
	for _, o := range objs {
		out[o.GetKind()]++
	}
	return out
}

func TestTraefikChart(t *testing.T) {
	objs, err := renderAddon(t, "traefik", nil)
	if err != nil {
		t.Fatal(err)
	}
	ds := find(t, objs, "DaemonSet", "traefik")
	if ds.GetNamespace() != "kube-ingress" {
		t.Errorf("DaemonSet namespace %q", ds.GetNamespace())
	}
	c := container(t, ds)
	if c["image"] != testTraefikImage || c["imagePullPolicy"] != "Never" {
		t.Errorf("image %v, pull policy %v", c["image"], c["imagePullPolicy"])
	}
	args := strings.Join(toStrings(c["args"]), " ")
	for _, want := range []string{"--entryPoints.web.address=:8000/tcp", "--entryPoints.websecure.address=:8443/tcp",
		"--providers.kubernetesingress=true", "--providers.kubernetesingress.ingressClass=traefik",
		"--providers.kubernetesingressnginx=true", "--providers.kubernetesgateway=true", "--ping.entryPoint=traefik"} {
		if !strings.Contains(args, want) {
			t.Errorf("args lack %s: %s", want, args)
		}
	}
	hostPorts := map[any]any{}
	for _, p := range c["ports"].([]any) {
		m := p.(map[string]any)
		hostPorts[m["name"]] = m["hostPort"]
	}
	if hostPorts["web"] != int64(80) || hostPorts["websecure"] != int64(443) || hostPorts["traefik"] != nil {
		t.Errorf("host ports %v, want web 80, websecure 443, traefik none", hostPorts)
	}
	ic := find(t, objs, "IngressClass", "traefik")
	if ic.GetAnnotations()["ingressclass.kubernetes.io/is-default-class"] != "true" {
		t.Errorf("IngressClass traefik is not the default: %v", ic.GetAnnotations())
	}
	if ctl, _, _ := unstructured.NestedString(find(t, objs, "IngressClass", "nginx").Object, "spec", "controller"); ctl != "k8s.io/ingress-nginx" {
		t.Errorf("IngressClass nginx's controller %q", ctl)
	}
	if ctl, _, _ := unstructured.NestedString(find(t, objs, "GatewayClass", "traefik").Object, "spec", "controllerName"); ctl != "traefik.io/gateway-controller" {
		t.Errorf("GatewayClass controller %q", ctl)
	}
	ls, _, _ := unstructured.NestedSlice(find(t, objs, "Gateway", "traefik").Object, "spec", "listeners")
	if len(ls) != 1 || ls[0].(map[string]any)["port"] != int64(8000) {
		t.Errorf("Gateway listeners %v, want one on the web entry point's port 8000", ls)
	}

	// Overridden: other ports, no Gateway API, no ingress-nginx, not the
	// default class.
	objs, err = renderAddon(t, "traefik", map[string]any{
		"ports":        map[string]any{"web": map[string]any{"port": 8081, "hostPort": 8080}},
		"gatewayAPI":   map[string]any{"enabled": false},
		"ingressNginx": map[string]any{"enabled": false},
		"ingressClass": map[string]any{"default": false},
		"extraArgs":    []any{"--accesslog.filepath=/tmp/a.log"},
	})
	if err != nil {
		t.Fatal(err)
	}
	k := kinds(objs)
	if k["GatewayClass"] != 0 || k["Gateway"] != 0 || k["IngressClass"] != 1 {
		t.Errorf("kinds %v, want no Gateway API object and one IngressClass", k)
	}
	c = container(t, find(t, objs, "DaemonSet", "traefik"))
	args = strings.Join(toStrings(c["args"]), " ")
	if strings.Contains(args, "kubernetesgateway") || strings.Contains(args, "nginx") ||
		!strings.Contains(args, "--entryPoints.web.address=:8081/tcp") || !strings.HasSuffix(args, "--accesslog.filepath=/tmp/a.log") {
		t.Errorf("args %s", args)
	}
	if p := c["ports"].([]any)[0].(map[string]any); p["containerPort"] != int64(8081) || p["hostPort"] != int64(8080) {
		t.Errorf("web port %v", p)
	}
	if len(find(t, objs, "IngressClass", "traefik").GetAnnotations()) != 0 {
		t.Error("IngressClass traefik still the default")
	}
	rules, _, _ := unstructured.NestedSlice(find(t, objs, "ClusterRole", "metalk8s:traefik").Object, "rules")
	for _, r := range rules {
		if strings.Contains(strings.Join(toStrings(r.(map[string]any)["apiGroups"]), ","), "gateway") {
			t.Errorf("the ClusterRole reads the Gateway API without it: %v", r)
		}
	}
	for _, bad := range []map[string]any{
		{"ports": map[string]any{"web": map[string]any{"port": 70000}}},
		{"logLevel": "LOUD"},
		{"gatewayAPI": map[string]any{"enabled": "yes"}},
	} {
		if _, err := renderAddon(t, "traefik", bad); err == nil || !strings.Contains(err.Error(), "chart traefik: values") {
			t.Errorf("%v: %v, want the schema's refusal", bad, err)
		}
	}
}

// Without the gateway-api addon, Traefik's Gateway API objects are off
// (nothing would serve their kinds) unless the operator turns them on;
// a disabled addon is not rendered.
func TestTraefikFollowsGatewayAPI(t *testing.T) {
	for vars, want := range map[string]int{
		"":                                    2,
		"metalk8s_gateway_api_enabled: false": 0,
		"metalk8s_gateway_api_enabled: false\nmetalk8s_traefik_values: {gatewayAPI: {enabled: true}}": 2,
	} {
		as, err := FromInventory(clusterWith(t, vars, map[string]string{}), testParams(true))
		if err != nil {
			t.Fatalf("%q: %v", vars, err)
		}
		for _, a := range as {
			switch a.Name {
			case "traefik":
				if k := kinds(a.Objects); k["GatewayClass"]+k["Gateway"] != want {
					t.Errorf("%q: traefik's kinds %v, want %d Gateway API objects", vars, k, want)
				}
			case "gateway-api":
				if !a.Enabled && a.Objects != nil {
					t.Errorf("%q: the disabled gateway-api addon was rendered", vars)
				}
			}
		}
	}
}

// The Gateway API chart holds the module's standard-channel files, the
// CRDs of the chart's appVersion, and takes no values.
func TestGatewayAPIChart(t *testing.T) {
	objs, err := renderAddon(t, "gateway-api", nil)
	if err != nil {
		t.Fatal(err)
	}
	ch, err := LoadChart(assets.Charts, "charts/gateway-api")
	if err != nil {
		t.Fatal(err)
	}
	k := kinds(objs)
	if k["CustomResourceDefinition"] < 5 || k["ValidatingAdmissionPolicy"] != 1 {
		t.Errorf("kinds %v", k)
	}
	names := map[string]bool{}
	for _, o := range objs {
		names[o.GetName()] = true
		if _, ok := o.GetAnnotations()["helm.sh/resource-policy"]; ok {
			t.Errorf("%s: a resource policy in the chart (metalk8s keeps CRDs itself: crds.go)", ref(o))
		}
		if o.GetKind() == "CustomResourceDefinition" && o.GetAnnotations()["gateway.networking.k8s.io/bundle-version"] != ch.Metadata.AppVersion {
			t.Errorf("%s: bundle-version %q, chart appVersion %s", o.GetName(), o.GetAnnotations()["gateway.networking.k8s.io/bundle-version"], ch.Metadata.AppVersion)
		}
		if o.GetKind() == "CustomResourceDefinition" && o.GetAnnotations()["gateway.networking.k8s.io/channel"] != "standard" {
			t.Errorf("%s: not of the standard channel", o.GetName())
		}
	}
	for _, n := range []string{"gatewayclasses.gateway.networking.k8s.io", "gateways.gateway.networking.k8s.io",
		"httproutes.gateway.networking.k8s.io", "grpcroutes.gateway.networking.k8s.io", "referencegrants.gateway.networking.k8s.io"} {
		if !names[n] {
			t.Errorf("no CRD %s", n)
		}
	}
	// The chart holds every file of the module's
	// config/crd/standard/gateway*.yaml, as is, at go.mod's version (the
	// generator copies; the template only labels and annotates).
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Version}} {{.Dir}}", "sigs.k8s.io/gateway-api").Output()
	ver, dir, _ := strings.Cut(strings.TrimSpace(string(out)), " ")
	if err != nil || dir == "" {
		t.Fatalf("go list -m sigs.k8s.io/gateway-api: %q, %v", out, err)
	}
	if ch.Metadata.AppVersion != ver {
		t.Errorf("chart appVersion %s, go.mod's sigs.k8s.io/gateway-api %s", ch.Metadata.AppVersion, ver)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "config/crd/standard/gateway*.yaml"))
	if len(files) == 0 || len(ch.Files) != len(files) {
		t.Errorf("%d files in the chart, %d in the module", len(ch.Files), len(files))
	}
	for _, f := range files {
		b, _ := os.ReadFile(f)
		found := false
		for _, cf := range ch.Files {
			found = found || (cf.Name == "files/"+filepath.Base(f) && string(cf.Data) == string(b))
		}
		if !found {
			t.Errorf("the module's %s is not in the chart as is (make generate)", filepath.Base(f))
		}
	}
}
