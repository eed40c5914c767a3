package kube

import (
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"

	"github.com/metalk8s/metalk8s/pkg/steps"
)

// ReadyStepID names the step, on the first control-plane host, after which
// the API answers: steps.ID(ReadyStepID, firstControlPlane). Cluster-side
// steps depend on it.
const ReadyStepID = "control-plane/ready"

// AdminConfPath is the admin kubeconfig the control-plane steps write
// (0600): <artifactsDir>/admin.conf, artifactsDir being
// <inventory dir>/artifacts.
func AdminConfPath(artifactsDir string) string { return filepath.Join(artifactsDir, "admin.conf") }

// runClients keeps one Client per run: the key is the kubeconfig's path
// and content hash and the run's Host value of the first control plane
// (a run makes its Host values afresh, so they tell runs apart).
var runClients = struct {
	sync.Mutex
	m     map[runKey]*runEntry
	order []runKey
}{m: map[runKey]*runEntry{}}

// keptRuns is how many runs' clients stay cached (one process usually
// runs one at a time; tests run a few).
const keptRuns = 4

type runKey struct {
	conf string
	sum  [sha256.Size]byte
	host steps.Host
}

type runEntry struct {
	done   chan struct{}
	client *Client
	err    error
}

// FromRun returns the run's Client for the kubeconfig at adminConf,
// connected through the first of hosts (control-plane names, in order of
// preference) whose apiserver answers /readyz, with each host's SSH
// connection taken from the run (steps.HostFrom). Every step of a run gets
// the same Client, and so one List cache; concurrent first callers wait
// for one Connect (and share its error). A failure is not kept: the next
// step tries again.
func FromRun(ctx context.Context, adminConf string, hosts []string) (*Client, error) {
	conf, err := os.ReadFile(adminConf)
	if err != nil {
		return nil, fmt.Errorf("kube: admin kubeconfig: %w", err)
	}
	dial := func(name string) (Dialer, error) {
		h := steps.HostFrom(ctx, name)
		if h == nil {
			return nil, fmt.Errorf("not connected in this run")
		}
		d, ok := h.(Dialer)
		if !ok {
			return nil, fmt.Errorf("host %s cannot open connections (not an SSH host)", name)
		}
		return d, nil
	}
	var first steps.Host
	for _, n := range hosts {
		if first = steps.HostFrom(ctx, n); first != nil {
			break
		}
	}
	if first == nil || !reflect.TypeOf(first).Comparable() {
		return Connect(ctx, conf, hosts, dial) // no run to share with
	}
	key := runKey{conf: adminConf + "\x00" + strings.Join(hosts, ","), sum: sha256.Sum256(conf), host: first}

	runClients.Lock()
	e, ok := runClients.m[key]
	if !ok {
		e = &runEntry{done: make(chan struct{})}
		runClients.m[key] = e
		runClients.order = append(runClients.order, key)
		if len(runClients.order) > keptRuns {
			delete(runClients.m, runClients.order[0])
			runClients.order = runClients.order[1:]
		}
	}
	runClients.Unlock()
	if ok {
		select {
		case <-e.done:
			return e.client, e.err
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	e.client, e.err = Connect(ctx, conf, hosts, dial)
	if e.err != nil {
		forget(key, e)
	}
	close(e.done)
	return e.client, e.err
}

// forget drops a failed Connect, so the next caller tries again.
func forget(key runKey, e *runEntry) {
	runClients.Lock()
	defer runClients.Unlock()
	if runClients.m[key] != e {
		return
	}
	delete(runClients.m, key)
	for i, k := range runClients.order {
		if k == key {
			runClients.order = append(runClients.order[:i], runClients.order[i+1:]...)
			break
		}
	}
}
