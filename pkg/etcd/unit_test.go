package etcd

import (
	"strings"
	"testing"

	"github.com/metalk8s/metalk8s/pkg/inventory"
)

func TestEnvAndInitial(t *testing.T) {
	n := &inventory.Node{Name: "node1", IP: "10.10.0.11"}
	env := string(envFor(n, Timings{Heartbeat: 500, Election: 5000}))
	for _, want := range []string{
		"ETCD_NAME=node1\n", "ETCD_LISTEN_CLIENT_URLS=https://127.0.0.1:2379,https://10.10.0.11:2379\n",
		"ETCD_INITIAL_ADVERTISE_PEER_URLS=https://10.10.0.11:2380\n", "ETCD_PEER_CLIENT_CERT_AUTH=true\n",
		"ETCD_HEARTBEAT_INTERVAL=500\n", "ETCD_ELECTION_TIMEOUT=5000\n",
		"ETCD_LISTEN_METRICS_URLS=http://127.0.0.1:2381,http://10.10.0.11:2381\n",
	} {
		if !strings.Contains(env, want) {
			t.Errorf("env lacks %q:\n%s", want, env)
		}
	}
	if strings.Contains(string(envFor(n, Timings{})), "HEARTBEAT") {
		t.Error("zero timings must keep etcd's defaults")
	}
	v6 := &inventory.Node{Name: "n6", IP: "fd00::1"}
	if !strings.Contains(string(envFor(v6, Timings{})), "https://[fd00::1]:2380") {
		t.Error("IPv6 peer URL not bracketed")
	}
	ini := string(initialEnv("existing", map[string]string{"b": "https://2:2380", "a": "https://1:2380"}, "tok"))
	if !strings.Contains(ini, "ETCD_INITIAL_CLUSTER=a=https://1:2380,b=https://2:2380\n") || !strings.Contains(ini, "ETCD_INITIAL_CLUSTER_STATE=existing\n") {
		t.Errorf("initial env:\n%s", ini)
	}
}

func TestTimingsFor(t *testing.T) {
	n := &inventory.Node{Name: "n", Vars: map[string]any{"etcd_heartbeat_interval": int64(500), "etcd_election_timeout": int64(5000)}}
	if tm, err := TimingsFor(n); err != nil || tm != (Timings{500, 5000}) {
		t.Errorf("%v %v", tm, err)
	}
	n.Vars["etcd_election_timeout"] = int64(1000)
	if _, err := TimingsFor(n); err == nil || !strings.Contains(err.Error(), "at least 5 times") {
		t.Errorf("election < 5 heartbeats: %v", err)
	}
	n.Vars["etcd_election_timeout"] = "soon"
	if _, err := TimingsFor(n); err == nil || !strings.Contains(err.Error(), "etcd_election_timeout") {
		t.Errorf("text: %v", err)
	}
}

func TestMembersOf(t *testing.T) {
	cl := &inventory.Cluster{Etcd: []*inventory.Node{
		{Name: "node1", IP: "10.10.0.11", SSH: inventory.SSHConfig{Host: "127.0.0.1"}},
		{Name: "node2", SSH: inventory.SSHConfig{Host: "node2"}},
	}}
	m := MembersOf(cl)
	if len(m) != 2 || strings.Join(m[0].SANs, ",") != "node1,10.10.0.11,127.0.0.1" || strings.Join(m[1].SANs, ",") != "node2" {
		t.Errorf("%+v", m)
	}
	if clusterToken([]string{"a", "b"}) != clusterToken([]string{"a", "b"}) || clusterToken([]string{"a"}) == clusterToken([]string{"a", "b"}) {
		t.Error("token")
	}
}
