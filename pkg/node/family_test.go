package node

import (
	"regexp"
	"strings"
	"testing"

	"github.com/metalk8s/metalk8s/pkg/bundle"
)

// The --os values the error suggests are ones bundle build accepts, and
// none is suggested for a family no bundle can carry.
func TestMissingFamilySuggestsAcceptedOS(t *testing.T) {
	msg := missingFamily("debian-11", []string{"debian-12"}).Error()
	m := regexp.MustCompile(`--os (\S+),`).FindStringSubmatch(msg)
	if m == nil {
		t.Fatalf("no --os suggested: %s", msg)
	}
	for _, f := range strings.Split(m[1], ",") {
		if _, err := bundle.DebSourceFor(f, "http://mirror"); err != nil {
			t.Errorf("%s suggests --os %s, which bundle build refuses: %v", msg, m[1], err)
		}
	}
	if !strings.Contains(msg, "debian-12,debian-11") || !strings.Contains(msg, "metalk8s_os: debian-11") {
		t.Errorf("debian-11 nodes, a debian-12 bundle: %s", msg)
	}
	msg = missingFamily("ubuntu-24", []string{"debian-12"}).Error()
	if strings.Contains(msg, "--os ubuntu") || !strings.Contains(msg, "accepts debian-11, debian-12 only") {
		t.Errorf("ubuntu-24 nodes: %s", msg)
	}
}
