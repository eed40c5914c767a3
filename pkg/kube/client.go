// Package kube talks to the cluster's API with client-go through a
// control-plane host's SSH connection, so no API port has to be reachable
// from the operator's machine: server-side apply with field manager
// "metalk8s", short human diffs for plan, and one List per kind of object
// per run, shared by every step that asks.
package kube

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/transport"
)

// APIServerPort is where kube-apiserver listens on every control-plane
// host (kubeadm's default localAPIEndpoint.bindPort); it is dialled on the
// host's own 127.0.0.1, whatever port the kubeconfig's server names.
const APIServerPort = 6443

// FieldManager owns the fields metalk8s sets with server-side apply.
const FieldManager = "metalk8s"

// readyzTimeout bounds one host's /readyz answer in Connect (a busy
// apiserver on slow hardware takes seconds).
const readyzTimeout = 15 * time.Second

// Dialer reaches a port on a host's loopback, through SSH (steps.SSHHost
// is one).
type Dialer interface {
	DialContext(ctx context.Context, network, addr string) (net.Conn, error)
}

// Client is one run's connection to the API: through the control-plane
// host chosen by Connect (others when it fails), typed and dynamic clients over it, and the run's
// List cache. Safe for concurrent use.
type Client struct {
	failover *failover
	config   *rest.Config
	typed    kubernetes.Interface
	dynamic  dynamic.Interface
	mapper   *restmapper.DeferredDiscoveryRESTMapper

	mu    sync.Mutex
	lists map[schema.GroupVersionResource]*listing
}

// Connect builds a client from kubeconfig (the admin.conf the control
// plane writes: server "https://<endpoint>:6443", client certificate or
// token) and tries hosts in order: each is dialled with dial(host) at its
// own 127.0.0.1:APIServerPort and asked /readyz; the first that answers
// "ok" serves the client. When it stops accepting connections (its
// apiserver restarting, the host down), new connections go to the next
// host that accepts, and a request that got no response at all is sent
// again, up to 5 times over 23 s. TLS still checks the kubeconfig's server
// name against the apiserver's certificate (its SANs hold the endpoint
// name, 127.0.0.1 and localhost). The error names every host and why it
// was passed over.
func Connect(ctx context.Context, kubeconfig []byte, hosts []string, dial func(host string) (Dialer, error)) (*Client, error) {
	return connect(ctx, kubeconfig, hosts, dial, nil)
}

// connect is Connect with an optional transport wrapper (tests count
// requests with it).
func connect(ctx context.Context, kubeconfig []byte, hosts []string, dial func(host string) (Dialer, error), wrap transport.WrapperFunc) (*Client, error) {
	base, err := clientcmd.RESTConfigFromKubeConfig(kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("kube: reading kubeconfig: %w", err)
	}
	if len(hosts) == 0 {
		return nil, errors.New("kube: no control-plane host to connect through")
	}
	var why []string
	for _, h := range hosts {
		c, err := tryHost(ctx, base, h, hosts, dial, wrap)
		if err == nil {
			return c, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		why = append(why, fmt.Sprintf("%s: %v", h, err))
	}
	return nil, fmt.Errorf("kube: no control-plane host answers /readyz on 127.0.0.1:%d (server %s): %s",
		APIServerPort, base.Host, strings.Join(why, "; "))
}

// tryHost builds the clients, first through host alone, and asks its
// /readyz; then connections may fail over to the other hosts.
func tryHost(ctx context.Context, base *rest.Config, host string, hosts []string, dial func(string) (Dialer, error), wrap transport.WrapperFunc) (*Client, error) {
	if _, err := dial(host); err != nil {
		return nil, err
	}
	f := newFailover(hosts, host, dial)
	cfg := rest.CopyConfig(base)
	cfg.Dial = f.DialContext
	cfg.Proxy = func(*http.Request) (*url.URL, error) { return nil, nil } // never an HTTPS_PROXY
	cfg.QPS, cfg.Burst = 100, 200                                         // one user, many steps: no client-side throttling
	cfg.Timeout = time.Minute
	cfg.WarningHandler = rest.NoWarnings{} // keep the progress display clean
	cfg.UserAgent = "metalk8s"
	cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper { return retrying{rt, f} })
	if wrap != nil {
		cfg.Wrap(wrap)
	}
	hc, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return nil, fmt.Errorf("kube: client config: %w", err)
	}
	typed, err := kubernetes.NewForConfigAndClient(cfg, hc)
	if err != nil {
		return nil, fmt.Errorf("kube: client: %w", err)
	}
	rctx, cancel := context.WithTimeout(ctx, readyzTimeout)
	defer cancel()
	body, err := typed.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(rctx)
	if err != nil {
		hc.CloseIdleConnections()
		return nil, fmt.Errorf("/readyz: %w", err)
	}
	if s := strings.TrimSpace(string(body)); s != "ok" {
		hc.CloseIdleConnections()
		return nil, fmt.Errorf("/readyz answered %q", s)
	}
	f.unpin()
	dyn, err := dynamic.NewForConfigAndClient(cfg, hc)
	if err != nil {
		return nil, fmt.Errorf("kube: dynamic client: %w", err)
	}
	disc, err := discovery.NewDiscoveryClientForConfigAndClient(cfg, hc)
	if err != nil {
		return nil, fmt.Errorf("kube: discovery client: %w", err)
	}
	return &Client{
		failover: f, config: cfg, typed: typed, dynamic: dyn,
		mapper: restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(disc)),
		lists:  map[schema.GroupVersionResource]*listing{},
	}, nil
}

// Host is the control-plane host whose apiserver served the client's
// latest connection: the one chosen by Connect until it stops accepting.
func (c *Client) Host() string { return c.failover.host() }

// Typed is the typed clientset (its reads are not cached).
func (c *Client) Typed() kubernetes.Interface { return c.typed }

// Dynamic is the dynamic client (its reads are not cached).
func (c *Client) Dynamic() dynamic.Interface { return c.dynamic }

// RESTConfig is a copy of the configuration, dialler included.
func (c *Client) RESTConfig() *rest.Config { return rest.CopyConfig(c.config) }
