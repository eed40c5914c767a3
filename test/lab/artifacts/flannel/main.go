// Command flanneld is flannel's node daemon, cut down for the metalk8s lab:
// the Kubernetes subnet manager (node podCIDRs from the API, net-conf.json from
// a mounted ConfigMap) and the VXLAN backend only. Upstream's main
// (github.com/flannel-io/flannel main.go) also links the ipsec, wireguard,
// tencentvpc, ... backends, whose modules the Go module proxy does not serve
// all of, so it cannot be built here; this main wires the same library
// packages in the same order: subnet manager, network config, external
// interface, backend, traffic rules (iptables or nftables), subnet file, lease.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/flannel-io/flannel/pkg/backend"
	_ "github.com/flannel-io/flannel/pkg/backend/vxlan" // registers "vxlan"
	"github.com/flannel-io/flannel/pkg/ip"
	"github.com/flannel-io/flannel/pkg/ipmatch"
	"github.com/flannel-io/flannel/pkg/subnet"
	"github.com/flannel-io/flannel/pkg/subnet/kube"
	"github.com/flannel-io/flannel/pkg/trafficmngr"
	"github.com/flannel-io/flannel/pkg/trafficmngr/iptables"
	"github.com/flannel-io/flannel/pkg/trafficmngr/nftables"
	"github.com/flannel-io/flannel/pkg/version"
	"github.com/joho/godotenv"
	"k8s.io/klog/v2"
)

// options are the flags kept from upstream, same names and defaults.
type options struct {
	kubeSubnetMgr       bool
	kubeAPIURL          string
	kubeconfig          string
	annotationPrefix    string
	netConfPath         string
	subnetFile          string
	ifaces              listFlag
	ifaceRegexes        listFlag
	ifaceCanReach       string
	publicIP            string
	publicIPv6          string
	ipMasq              bool
	masqNoRandomFully   bool
	resyncSeconds       int
	forwardRules        bool
	setNetworkAvailable bool
	healthzIP           string
	healthzPort         int
	version             bool
}

// listFlag is a flag that may be given several times.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

func parseFlags(args []string) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("flanneld", flag.ContinueOnError)
	fs.BoolVar(&o.kubeSubnetMgr, "kube-subnet-mgr", false, "take node subnets from the Kubernetes API (the only manager this build has; required)")
	fs.StringVar(&o.kubeAPIURL, "kube-api-url", "", "API server URL (default: in-cluster)")
	fs.StringVar(&o.kubeconfig, "kubeconfig-file", "", "kubeconfig file (default: in-cluster)")
	fs.StringVar(&o.annotationPrefix, "kube-annotation-prefix", "flannel.alpha.coreos.com", "prefix of the node annotations flannel writes")
	fs.StringVar(&o.netConfPath, "net-config-path", "/etc/kube-flannel/net-conf.json", "network configuration (JSON: Network, Backend, ...)")
	fs.StringVar(&o.subnetFile, "subnet-file", "/run/flannel/subnet.env", "where FLANNEL_NETWORK, FLANNEL_SUBNET, FLANNEL_MTU, FLANNEL_IPMASQ are written")
	fs.Var(&o.ifaces, "iface", "interface (name or IP) for traffic between hosts; repeatable, first match wins")
	fs.Var(&o.ifaceRegexes, "iface-regex", "regex on interface names or IPs, tried after --iface; repeatable")
	fs.StringVar(&o.ifaceCanReach, "iface-can-reach", "", "use the interface of the route to this IP")
	fs.StringVar(&o.publicIP, "public-ip", "", "IPv4 address other nodes reach this one at")
	fs.StringVar(&o.publicIPv6, "public-ipv6", "", "IPv6 address other nodes reach this one at")
	fs.BoolVar(&o.ipMasq, "ip-masq", false, "masquerade traffic from pods to outside the pod network")
	fs.BoolVar(&o.masqNoRandomFully, "ip-masq-fully-random-disable", false, "do not use --random-fully for MASQUERADE")
	fs.IntVar(&o.resyncSeconds, "iptables-resync", 5, "period, in seconds, of the traffic rules' resync")
	fs.BoolVar(&o.forwardRules, "iptables-forward-rules", true, "accept the pod network's traffic in the FORWARD chain")
	fs.BoolVar(&o.setNetworkAvailable, "set-node-network-unavailable", true, "clear the node's NetworkUnavailable condition once ready")
	fs.StringVar(&o.healthzIP, "healthz-ip", "0.0.0.0", "address of the /healthz and /readyz server")
	fs.IntVar(&o.healthzPort, "healthz-port", 0, "port of the /healthz and /readyz server (0: none)")
	fs.BoolVar(&o.version, "version", false, "print the version and exit")
	// klog's verbosity flags, under the same names as upstream's
	kfs := flag.NewFlagSet("klog", flag.ContinueOnError)
	klog.InitFlags(kfs)
	for _, n := range []string{"v", "vmodule"} {
		fs.Var(kfs.Lookup(n).Value, n, kfs.Lookup(n).Usage)
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	// as upstream: FLANNELD_<FLAG> (upper case, '-' as '_') sets a flag not given
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		key := "FLANNELD_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v, ok := os.LookupEnv(key); ok && !given[f.Name] && envErr == nil {
			if err := fs.Set(f.Name, v); err != nil {
				envErr = fmt.Errorf("environment %s=%q: %w", key, v, err)
			}
		}
	})
	if envErr != nil {
		return nil, envErr
	}
	if !o.version && !o.kubeSubnetMgr {
		return nil, errors.New("--kube-subnet-mgr is required: this flanneld has no etcd subnet manager")
	}
	if o.resyncSeconds <= 0 {
		return nil, fmt.Errorf("--iptables-resync=%d: must be positive", o.resyncSeconds)
	}
	return o, nil
}

func main() {
	o, err := parseFlags(os.Args[1:])
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "flanneld:", err)
		os.Exit(2)
	}
	if o.version {
		fmt.Println(version.Version)
		return
	}
	if err := run(o); err != nil {
		klog.Errorf("flanneld: %v", err)
		klog.Flush()
		os.Exit(1)
	}
}

// run starts the daemon and returns when SIGINT/SIGTERM stops it, or on error.
func run(o *options) error {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }() // the backend's goroutines stop with ctx

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		select {
		case s := <-sigs:
			klog.Infof("%v: stopping", s)
			cancel()
		case <-ctx.Done():
		}
		signal.Stop(sigs)
	}()

	sm, err := kube.NewSubnetManager(ctx, o.kubeAPIURL, o.kubeconfig, o.annotationPrefix, o.netConfPath, o.setNetworkAvailable)
	if err != nil {
		return fmt.Errorf("kube subnet manager (net conf %s): %w", o.netConfPath, err)
	}
	var ready atomic.Bool
	if o.healthzPort > 0 {
		serveHealth(ctx, &wg, net.JoinHostPort(o.healthzIP, strconv.Itoa(o.healthzPort)), &ready)
	}
	cfg, err := networkConfig(ctx, sm)
	if err != nil {
		return err
	}
	if cfg.BackendType != "vxlan" {
		return fmt.Errorf("%s: backend %q: this flanneld has only vxlan", o.netConfPath, cfg.BackendType)
	}
	if !cfg.EnableNFTables {
		// the iptables rules need bridged traffic to cross netfilter
		for on, f := range map[bool]string{cfg.EnableIPv4: "/proc/sys/net/bridge/bridge-nf-call-iptables", cfg.EnableIPv6: "/proc/sys/net/bridge/bridge-nf-call-ip6tables"} {
			if _, err := os.Stat(f); on && err != nil {
				return fmt.Errorf("br_netfilter not loaded: %w", err)
			}
		}
	}
	ext, err := externalInterface(ctx, o, sm, cfg)
	if err != nil {
		return err
	}
	be, err := backend.NewManager(ctx, sm, ext).GetBackend(cfg.BackendType)
	if err != nil {
		return fmt.Errorf("backend %s: %w", cfg.BackendType, err)
	}
	bn, err := be.RegisterNetwork(ctx, &wg, cfg)
	if err != nil {
		return fmt.Errorf("register network with backend %s: %w", cfg.BackendType, err)
	}

	// drop the rules of the traffic manager not in use, then set up the other
	if err := trafficManager(!cfg.EnableNFTables).CleanUp(ctx); err != nil {
		return fmt.Errorf("clean up traffic rules: %w", err)
	}
	tm := trafficManager(cfg.EnableNFTables)
	if err := tm.Init(ctx); err != nil {
		return fmt.Errorf("traffic manager: %w", err)
	}
	if o.ipMasq {
		// the previous run's ranges, so that stale rules get replaced
		env, _ := godotenv.Read(o.subnetFile)
		err := tm.SetupAndEnsureMasqRules(ctx,
			cfg.Network, prev4(env, "FLANNEL_SUBNET"), prev4(env, "FLANNEL_NETWORK"),
			cfg.IPv6Network, prev6(env, "FLANNEL_IPV6_SUBNET"), prev6(env, "FLANNEL_IPV6_NETWORK"),
			bn.Lease(), o.resyncSeconds, o.masqNoRandomFully)
		if err != nil {
			return fmt.Errorf("masquerade rules: %w", err)
		}
	}
	if o.forwardRules {
		tm.SetupAndEnsureForwardRules(ctx, cfg.Network, cfg.IPv6Network, o.resyncSeconds)
	}
	l := bn.Lease()
	if err := sm.HandleSubnetFile(o.subnetFile, cfg, o.ipMasq, l.Subnet, l.IPv6Subnet, bn.MTU()); err != nil {
		klog.Warningf("subnet file %s: %v", o.subnetFile, err) // upstream goes on too
	} else {
		ready.Store(true)
		klog.Infof("wrote %s (subnet %s, MTU %d): ready", o.subnetFile, l.Subnet, bn.MTU())
	}

	wg.Add(1)
	go func() { defer wg.Done(); bn.Run(ctx) }()
	// CompleteLease blocks until ctx ends for the kube manager
	if err := sm.CompleteLease(ctx, l, &wg); err != nil && ctx.Err() == nil {
		return fmt.Errorf("lease: %w", err)
	}
	<-ctx.Done()
	return nil
}

// networkConfig asks the subnet manager for the network config every second
// until it has one or ctx ends.
func networkConfig(ctx context.Context, sm subnet.Manager) (*subnet.Config, error) {
	for {
		cfg, err := sm.GetNetworkConfig(ctx)
		if err == nil && cfg != nil {
			return cfg, nil
		}
		klog.Warningf("network config not available yet: %v", err)
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("network config: %w", ctx.Err())
		case <-time.After(time.Second):
		}
	}
}

// externalInterface picks the interface VXLAN traffic leaves by: the node's
// stored public IP or --public-ip, else --iface, --iface-regex, --iface-can-reach
// in that order, else the default route's interface.
func externalInterface(ctx context.Context, o *options, sm subnet.Manager, cfg *subnet.Config) (*backend.ExternalInterface, error) {
	stack, err := ipmatch.GetIPFamily(cfg.EnableIPv4, cfg.EnableIPv6)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", o.netConfPath, err)
	}
	pub := ipmatch.PublicIPOpts{PublicIP: o.publicIP, PublicIPv6: o.publicIPv6}
	if v4, v6 := sm.GetStoredPublicIP(ctx); v4 != "" || v6 != "" {
		if v4 != "" {
			pub.PublicIP = v4
		}
		if v6 != "" {
			pub.PublicIPv6 = v6
		}
	}
	if len(o.ifaces) == 0 && len(o.ifaceRegexes) == 0 && o.ifaceCanReach == "" {
		want := pub.PublicIP
		if want == "" {
			want = pub.PublicIPv6
		}
		ext, err := ipmatch.LookupExtIface(want, "", "", stack, pub)
		if err != nil {
			return nil, fmt.Errorf("default interface: %w", err)
		}
		return ext, nil
	}
	type try struct{ name, re, reach string }
	var tries []try
	for _, i := range o.ifaces {
		tries = append(tries, try{name: i})
	}
	for _, r := range o.ifaceRegexes {
		tries = append(tries, try{re: r})
	}
	if o.ifaceCanReach != "" {
		tries = append(tries, try{reach: o.ifaceCanReach})
	}
	for _, t := range tries {
		ext, err := ipmatch.LookupExtIface(t.name, t.re, t.reach, stack, pub)
		if err == nil && ext != nil {
			return ext, nil
		}
		klog.Infof("no interface for %+v: %v", t, err)
	}
	return nil, fmt.Errorf("no interface matches --iface %v, --iface-regex %v, --iface-can-reach %q", o.ifaces, o.ifaceRegexes, o.ifaceCanReach)
}

func trafficManager(nft bool) trafficmngr.TrafficManager {
	if nft {
		return &nftables.NFTablesManager{}
	}
	return &iptables.IPTablesManager{}
}

// prev4 reads an IPv4 CIDR of the previous subnet file; zero when absent or bad.
func prev4(env map[string]string, key string) ip.IP4Net {
	if _, n, err := net.ParseCIDR(env[key]); err == nil && n.IP.To4() != nil {
		return ip.FromIPNet(n)
	}
	return ip.IP4Net{}
}

// prev6 is prev4 for IPv6.
func prev6(env map[string]string, key string) ip.IP6Net {
	if _, n, err := net.ParseCIDR(env[key]); err == nil && n.IP.To4() == nil {
		return ip.FromIP6Net(n)
	}
	return ip.IP6Net{}
}

// serveHealth serves /healthz (always 200) and /readyz (200 once the subnet
// file is written) until ctx ends.
func serveHealth(ctx context.Context, wg *sync.WaitGroup, addr string, ready *atomic.Bool) {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !ready.Load() {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	srv := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	wg.Add(2)
	go func() {
		defer wg.Done()
		if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
			klog.Errorf("health server on %s: %v", addr, err)
		}
	}()
	go func() {
		defer wg.Done()
		<-ctx.Done()
		sctx, c := context.WithTimeout(context.Background(), 3*time.Second)
		defer c()
		_ = srv.Shutdown(sctx)
	}()
}
