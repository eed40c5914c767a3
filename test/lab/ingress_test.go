package lab

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/metalk8s/metalk8s/pkg/ssh"
)

// testIngress checks the ingress addons: the traefik release deployed,
// Traefik's DaemonSet ready on every node, and an Ingress (of the default
// class) routing a request sent to every node's port 80 (from node1, to
// each node's address: hostPort through the CNI portmap plugin) to a test
// Service; and, when the lab's inventory enables the gateway-api addon
// (lab.sh turns it off: its CRDs outlast the apiserver's write timeout on
// the lab), its release and a Gateway API HTTPRoute routing the same way.
func (l *lab) testIngress(t *testing.T) {
	out, err := l.helm(time.Minute, "list", "-n", "kube-ingress", "-q")
	if err != nil || !strings.Contains(out, "traefik\n") {
		t.Errorf("helm list -n kube-ingress: %q, %v; want traefik", out, err)
	}
	gateway := strings.Contains(out, "gateway-api\n")
	hosts, manifests := []string{"ingress.lab"}, ingressManifests
	if gateway {
		hosts, manifests = append(hosts, "gateway.lab"), manifests+httpRouteManifest
	} else {
		t.Log("no gateway-api release (off in the lab's inventory): the HTTPRoute is not checked")
	}
	eventually(t, 10*time.Minute, "Traefik ready on every node", func() error {
		out, err := l.kubectl(time.Minute, "", "get", "daemonset", "-n", "kube-ingress", "traefik", "-o",
			"jsonpath={.status.numberReady}/{.status.desiredNumberScheduled}")
		if err != nil || out != fmt.Sprintf("%d/%d", nodes, nodes) {
			return fmt.Errorf("%v: ready/desired %q", err, out)
		}
		return nil
	})
	l.mustKubectl(t, manifests, "apply", "-f", "-")
	t.Cleanup(func() { _, _ = l.kubectl(time.Minute, "", "delete", "namespace", "e2e-ingress", "--wait=false") })
	ips := strings.Fields(l.mustKubectl(t, "", "get", "nodes", "-o",
		`jsonpath={range .items[*]}{.status.addresses[?(@.type=="InternalIP")].address}{" "}{end}`))
	if len(ips) != nodes {
		t.Fatalf("node addresses %q", ips)
	}
	for _, host := range hosts {
		for _, ip := range ips {
			// bash's /dev/tcp: the lab's Debian has no curl
			cmd := fmt.Sprintf(`exec 3<>/dev/tcp/%s/80 && printf 'GET /index.html HTTP/1.0\r\nHost: %s\r\n\r\n' >&3 && timeout 10 cat <&3`, ip, host)
			eventually(t, 5*time.Minute, host+" through "+ip+":80", func() error {
				out, err := l.metalk8sErr(time.Minute, "exec", "-i", l.inv, "--known-hosts", l.known, "--limit", "node1", "--", "bash -c "+ssh.Quote(cmd))
				if err != nil || !strings.Contains(out, " 200 ") || !strings.Contains(out, "routed-by-traefik") {
					return fmt.Errorf("%v: %s", err, out)
				}
				return nil
			})
		}
	}
}

// ingressManifests: busybox httpd serving routed-by-traefik, its
// Service and an Ingress without a class (traefik is the default).
const ingressManifests = `apiVersion: v1
kind: Namespace
metadata: {name: e2e-ingress}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: e2e-ingress}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: web
        image: ` + podImage + `
        imagePullPolicy: Never
        command: [sh, -c, 'mkdir -p /www && echo routed-by-traefik > /www/index.html && exec httpd -f -p 8080 -h /www']
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: e2e-ingress}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: 8080}]
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: web, namespace: e2e-ingress}
spec:
  rules:
  - host: ingress.lab
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}
`

// httpRouteManifest: an HTTPRoute to ingressManifests' Service on the
// shared Gateway kube-ingress/traefik.
const httpRouteManifest = `---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: web, namespace: e2e-ingress}
spec:
  parentRefs: [{name: traefik, namespace: kube-ingress}]
  hostnames: [gateway.lab]
  rules: [{backendRefs: [{name: web, port: 80}]}]
`
