package kube

import (
	"bytes"
	"net/http"
	"strings"
	"testing"

	"k8s.io/client-go/transport"
	"k8s.io/klog/v2"
)

// client-go cancels a timed-out request through its wrappers down to the
// transport; retrying must let it through, not make klog print "unable
// to cancel request" on the terminal (seen on make demo's addons).
func TestRetryingCancels(t *testing.T) {
	var buf bytes.Buffer
	klog.LogToStderr(false)
	klog.SetOutput(&buf)
	defer func() { klog.SetOutput(nil); klog.LogToStderr(true) }()

	rt := transport.NewUserAgentRoundTripper("metalk8s-test", retrying{rt: &http.Transport{}, f: &failover{}})
	c, ok := rt.(interface{ CancelRequest(*http.Request) })
	if !ok {
		t.Fatalf("%T cannot cancel", rt)
	}
	req, _ := http.NewRequest("GET", "https://127.0.0.1:1/readyz", nil)
	c.CancelRequest(req)
	klog.Flush()
	if strings.Contains(buf.String(), "unable to cancel") {
		t.Errorf("klog: %s", buf.String())
	}
}
