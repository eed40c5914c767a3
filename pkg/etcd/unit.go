package etcd

import (
	"fmt"
	"strings"

	"github.com/metalk8s/metalk8s/pkg/inventory"
)

// Paths on the nodes.
const (
	UnitFile    = "/etc/systemd/system/etcd.service"
	EnvFile     = "/etc/etcd/etcd.env"
	InitialFile = "/etc/etcd/initial.env" // written once, when the member starts for the first time
	DataDir     = "/var/lib/etcd"
	PKIDir      = "/etc/kubernetes/pki/etcd"
	ClientPort  = 2379
	PeerPort    = 2380
	// MetricsPort is the member's metrics listener (kubeadm's and
	// kubespray's etcd_metrics_port): plain HTTP serving /metrics and
	// /health only, on 127.0.0.1 and the member's address, so Prometheus
	// scrapes it without an etcd client certificate, which would give
	// whoever reads it every key of the cluster (etcd has no auth here).
	MetricsPort = 2381
)

const unit = `# Written by metalk8s.
[Unit]
Description=etcd (metalk8s)
Documentation=https://etcd.io/docs/
After=network-online.target
Wants=network-online.target

[Service]
Type=notify
EnvironmentFile=` + EnvFile + `
EnvironmentFile=-` + InitialFile + `
ExecStart=/usr/local/bin/etcd
Restart=always
RestartSec=5s
LimitNOFILE=65536
TimeoutStartSec=0
# etcd's tuning guide: the highest best-effort disk priority (ionice -c2 -n0).
IOSchedulingClass=best-effort
IOSchedulingPriority=0
# Heartbeats, fsyncs and reads are latency-bound: on a busy control plane
# etcd comes before the node's other services (default weight 100).
CPUWeight=1000

[Install]
WantedBy=multi-user.target
`

// Timings are etcd's raft timings in milliseconds, from the inventory
// (etcd_heartbeat_interval, etcd_election_timeout); zero keeps etcd's.
type Timings struct{ Heartbeat, Election int }

// TimingsFor reads the timings of a host.
func TimingsFor(n *inventory.Node) (Timings, error) {
	var t Timings
	for key, dst := range map[string]*int{"etcd_heartbeat_interval": &t.Heartbeat, "etcd_election_timeout": &t.Election} {
		switch v := n.Vars[key].(type) {
		case nil:
		case int:
			*dst = v
		case int64:
			*dst = int(v)
		default:
			return t, fmt.Errorf("host %s: %s must be a number of milliseconds, found %v (%s)", n.Name, key, v, n.Source[key])
		}
		if *dst < 0 {
			return t, fmt.Errorf("host %s: %s must be positive", n.Name, key)
		}
	}
	if t.Heartbeat > 0 && t.Election > 0 && t.Election < 5*t.Heartbeat {
		return t, fmt.Errorf("host %s: etcd_election_timeout (%d) should be at least 5 times etcd_heartbeat_interval (%d)", n.Name, t.Election, t.Heartbeat)
	}
	return t, nil
}

func peerURL(n *inventory.Node) string {
	return fmt.Sprintf("https://%s:%d", hostPort(n.Address()), PeerPort)
}
func clientURL(n *inventory.Node) string {
	return fmt.Sprintf("https://%s:%d", hostPort(n.Address()), ClientPort)
}

// hostPort brackets IPv6 addresses.
func hostPort(a string) string {
	if strings.Contains(a, ":") {
		return "[" + a + "]"
	}
	return a
}

// envFor is the member's configuration, the same on every run.
func envFor(n *inventory.Node, t Timings) []byte {
	lines := []string{
		"# Written by metalk8s.",
		"ETCD_NAME=" + n.Name,
		"ETCD_DATA_DIR=" + DataDir,
		fmt.Sprintf("ETCD_LISTEN_CLIENT_URLS=https://127.0.0.1:%d,%s", ClientPort, clientURL(n)),
		"ETCD_ADVERTISE_CLIENT_URLS=" + clientURL(n),
		"ETCD_LISTEN_PEER_URLS=" + peerURL(n),
		"ETCD_INITIAL_ADVERTISE_PEER_URLS=" + peerURL(n),
		fmt.Sprintf("ETCD_LISTEN_METRICS_URLS=http://127.0.0.1:%d,http://%s:%d", MetricsPort, hostPort(n.Address()), MetricsPort),
		"ETCD_CERT_FILE=" + PKIDir + "/server.crt",
		"ETCD_KEY_FILE=" + PKIDir + "/server.key",
		"ETCD_TRUSTED_CA_FILE=" + PKIDir + "/ca.crt",
		"ETCD_CLIENT_CERT_AUTH=true",
		"ETCD_PEER_CERT_FILE=" + PKIDir + "/peer.crt",
		"ETCD_PEER_KEY_FILE=" + PKIDir + "/peer.key",
		"ETCD_PEER_TRUSTED_CA_FILE=" + PKIDir + "/ca.crt",
		"ETCD_PEER_CLIENT_CERT_AUTH=true",
	}
	if t.Heartbeat > 0 {
		lines = append(lines, fmt.Sprintf("ETCD_HEARTBEAT_INTERVAL=%d", t.Heartbeat))
	}
	if t.Election > 0 {
		lines = append(lines, fmt.Sprintf("ETCD_ELECTION_TIMEOUT=%d", t.Election))
	}
	return []byte(strings.Join(lines, "\n") + "\n")
}

// initialEnv is how a member first starts: a new cluster of all members,
// or joining the existing members.
func initialEnv(state string, members map[string]string, token string) []byte {
	var parts []string
	for _, name := range sortedNames(members) {
		parts = append(parts, name+"="+members[name])
	}
	return []byte(fmt.Sprintf("# Written by metalk8s when this member first started.\nETCD_INITIAL_CLUSTER=%s\nETCD_INITIAL_CLUSTER_STATE=%s\nETCD_INITIAL_CLUSTER_TOKEN=%s\n",
		strings.Join(parts, ","), state, token))
}
