package addons

import (
	"log/slog"
	"strings"
	"sync"
	"time"

	"helm.sh/helm/v4/pkg/action"
	helmkube "helm.sh/helm/v4/pkg/kube"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/metalk8s/metalk8s/pkg/steps"
)

// HelmFieldManager owns the fields of the releases' objects, as the helm
// CLI's: an operator's `helm upgrade` of a metalk8s release does not
// conflict with metalk8s's.
const HelmFieldManager = "helm"

// StorageDriver is where releases are kept: Secrets in the release's
// namespace, Helm's default, so `helm list -A` shows them.
const StorageDriver = "secret"

// getter is a genericclioptions.RESTClientGetter over a rest.Config (the
// run's, whose dialler goes through SSH) and one namespace: what the Helm
// SDK's Configuration.Init takes.
type getter struct {
	config    *rest.Config
	namespace string

	once   sync.Once
	disc   discovery.CachedDiscoveryInterface
	mapper meta.RESTMapper
	err    error
}

func (g *getter) ToRESTConfig() (*rest.Config, error) { return rest.CopyConfig(g.config), nil }

func (g *getter) ToDiscoveryClient() (discovery.CachedDiscoveryInterface, error) {
	g.init()
	return g.disc, g.err
}

func (g *getter) ToRESTMapper() (meta.RESTMapper, error) {
	g.init()
	return g.mapper, g.err
}

func (g *getter) init() {
	g.once.Do(func() {
		d, err := discovery.NewDiscoveryClientForConfig(rest.CopyConfig(g.config))
		if err != nil {
			g.err = err
			return
		}
		g.disc = memory.NewMemCacheClient(d)
		g.mapper = restmapper.NewShortcutExpander(restmapper.NewDeferredDiscoveryRESTMapper(g.disc), g.disc, nil)
	})
}

// ToRawKubeConfigLoader gives Helm the namespace; its clients come from
// ToRESTConfig.
func (g *getter) ToRawKubeConfigLoader() clientcmd.ClientConfig {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["metalk8s"] = &clientcmdapi.Cluster{Server: g.config.Host}
	cfg.Contexts["metalk8s"] = &clientcmdapi.Context{Cluster: "metalk8s", Namespace: g.namespace}
	cfg.CurrentContext = "metalk8s"
	return clientcmd.NewDefaultClientConfig(*cfg, &clientcmd.ConfigOverrides{})
}

// slowRequestTimeout bounds each API request of Helm's on the client's
// side, in place of kube.Client's minute
// (which client-go also sends as ?timeout=): the apiserver's own bounds
// are the ones that count (--request-timeout for reads, the inventory's
// kube_apiserver_request_timeout; 34 s for every write, whatever the
// client asks), and this one only catches a dead connection.
const slowRequestTimeout = 10 * time.Minute

// slowConfig is config for Helm's requests: a copy,
// timing out after slowRequestTimeout.
func slowConfig(config *rest.Config) *rest.Config {
	cfg := rest.CopyConfig(config)
	cfg.Timeout = slowRequestTimeout
	return cfg
}

// helmConfig is the Helm SDK's action configuration for releases in
// namespace, reaching the API with config (each request bounded by
// slowRequestTimeout instead of config's own). Helm's log lines go to log
// (nil: discarded).
func helmConfig(config *rest.Config, namespace string, log slog.Handler) (*action.Configuration, error) {
	config = slowConfig(config)
	var opts []action.ConfigurationOption
	if log != nil {
		opts = append(opts, action.ConfigurationSetLogger(log))
	} else {
		opts = append(opts, action.ConfigurationSetLogger(slog.DiscardHandler))
	}
	cfg := action.NewConfiguration(opts...)
	if err := cfg.Init(&getter{config: config, namespace: namespace}, namespace, StorageDriver); err != nil {
		return nil, err
	}
	return cfg, nil
}

// runLogWriter writes each record slog's text handler emits as one run-log
// line, "<host> helm: <record>".
type runLogWriter struct {
	log  *steps.RunLog
	host string
}

func (w runLogWriter) Write(p []byte) (int, error) {
	w.log.Printf("%s helm: %s", w.host, strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// logHandler sends the Helm SDK's log records, debug ones included (what it
// creates, what it waits for), to the run log of the step's host; nil
// (discarded) for a host without one.
func logHandler(h steps.Host) slog.Handler {
	sh, ok := h.(*steps.SSHHost)
	if !ok || sh.Log == nil {
		return nil
	}
	return slog.NewTextHandler(runLogWriter{log: sh.Log, host: h.Name()}, &slog.HandlerOptions{Level: slog.LevelDebug})
}

func init() {
	helmkube.ManagedFieldsManager = HelmFieldManager
}
