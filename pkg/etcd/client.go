package etcd

import (
	"context"
	"fmt"
	"net"
	"sort"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"

	"github.com/metalk8s/metalk8s/pkg/steps"
)

// Dialer reaches a port on a host's loopback, through SSH.
type Dialer interface {
	DialContext(ctx context.Context, network, addr string) (net.Conn, error)
}

// Client opens an etcd client to the named members. Each endpoint is
// "https://<member>:2379", dialled as the member's own 127.0.0.1:2379
// through its SSH connection, so no etcd port needs to be reachable from
// this machine; TLS checks the member's name in its server certificate.
func Client(ctx context.Context, p *PKI, hosts map[string]Dialer) (*clientv3.Client, error) {
	tlsConf, err := p.ClientTLS()
	if err != nil {
		return nil, err
	}
	var endpoints []string
	for name := range hosts {
		endpoints = append(endpoints, fmt.Sprintf("https://%s:%d", name, ClientPort))
	}
	sort.Strings(endpoints)
	dial := func(ctx context.Context, addr string) (net.Conn, error) {
		name, _, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, err
		}
		d := hosts[strings.Trim(name, "[]")]
		if d == nil {
			return nil, fmt.Errorf("etcd: no SSH connection for %s", addr)
		}
		return d.DialContext(ctx, "tcp", fmt.Sprintf("127.0.0.1:%d", ClientPort))
	}
	return clientv3.New(clientv3.Config{
		Endpoints:   endpoints,
		TLS:         tlsConf,
		DialTimeout: 10 * time.Second,
		DialOptions: []grpc.DialOption{grpc.WithContextDialer(dial)},
		Logger:      zap.NewNop(),
		Context:     ctx,
	})
}

// dialers looks up the SSH connections of members during a run.
func dialers(ctx context.Context, names []string) (map[string]Dialer, error) {
	out := map[string]Dialer{}
	for _, n := range names {
		h := steps.HostFrom(ctx, n)
		d, ok := h.(Dialer)
		if !ok {
			return nil, fmt.Errorf("etcd: host %s cannot open connections (not an SSH host)", n)
		}
		out[n] = d
	}
	return out, nil
}

// clientTo opens a client to the named members through their connections
// in the run.
func clientTo(ctx context.Context, p *PKI, names []string) (*clientv3.Client, error) {
	ds, err := dialers(ctx, names)
	if err != nil {
		return nil, err
	}
	return Client(ctx, p, ds)
}

// Health is one member's answer.
type Health struct {
	Name, Endpoint string
	Healthy        bool
	Err            error
	Leader         bool
}

// Members lists the cluster's members by name ("" for one added but not
// started) with their peer URLs.
func Members(ctx context.Context, c *clientv3.Client) (map[string][]string, map[string]uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	resp, err := c.MemberList(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("etcd member list: %w", err)
	}
	urls := map[string][]string{}
	ids := map[string]uint64{}
	for _, m := range resp.Members {
		for _, u := range m.PeerURLs {
			urls[m.Name] = append(urls[m.Name], u)
			ids[u] = m.ID
		}
	}
	return urls, ids, nil
}

// Healthy asks each named member (through its own connection) for its
// status; a member answers when it is part of a quorum.
func Healthy(ctx context.Context, p *PKI, hosts map[string]Dialer) []Health {
	names := sortedNames(hosts)
	out := make([]Health, len(names))
	var wg sync.WaitGroup
	for i, name := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i] = memberHealth(ctx, p, name, hosts[name])
		}()
	}
	wg.Wait()
	return out
}

func memberHealth(ctx context.Context, p *PKI, name string, d Dialer) Health {
	h := Health{Name: name, Endpoint: fmt.Sprintf("https://%s:%d", name, ClientPort)}
	c, err := Client(ctx, p, map[string]Dialer{name: d})
	if err != nil {
		h.Err = err
		return h
	}
	defer c.Close()
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	st, err := c.Status(cctx, h.Endpoint)
	if err == nil {
		// A linearizable read proves the member is in a working quorum.
		_, err = c.Get(cctx, "health-check-metalk8s")
	}
	if err != nil {
		h.Err = err
	} else {
		h.Healthy = true
		h.Leader = st.Leader == st.Header.MemberId
	}
	return h
}

func sortedNames[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
