package network

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
)

// The fields the reference plugins read (containernetworking/plugins v1.9.1:
// plugins/main/bridge NetConf, plugins/ipam/host-local/backend/allocator
// IPAMConfig and Range, plugins/meta/portmap PortMapConf). Hand-written
// because github.com/containernetworking/cni (libcni) is not in our go.sum;
// decoded with DisallowUnknownFields so a misspelt key fails.
type (
	specConfList struct {
		CNIVersion   string            `json:"cniVersion"`
		Name         string            `json:"name"`
		DisableCheck bool              `json:"disableCheck"`
		Plugins      []json.RawMessage `json:"plugins"`
	}
	specBridge struct {
		Type             string   `json:"type"`
		Bridge           string   `json:"bridge"`
		IsGateway        bool     `json:"isGateway"`
		IsDefaultGateway bool     `json:"isDefaultGateway"`
		ForceAddress     bool     `json:"forceAddress"`
		IPMasq           bool     `json:"ipMasq"`
		MTU              int      `json:"mtu"`
		HairpinMode      bool     `json:"hairpinMode"`
		PromiscMode      bool     `json:"promiscMode"`
		IPAM             specIPAM `json:"ipam"`
	}
	specIPAM struct {
		Type    string `json:"type"`
		DataDir string `json:"dataDir"`
		Ranges  [][]struct {
			Subnet     string `json:"subnet"`
			RangeStart string `json:"rangeStart"`
			RangeEnd   string `json:"rangeEnd"`
			Gateway    string `json:"gateway"`
		} `json:"ranges"`
		Routes []struct {
			Dst string `json:"dst"`
			GW  string `json:"gw"`
		} `json:"routes"`
	}
	specPortmap struct {
		Type         string          `json:"type"`
		Capabilities map[string]bool `json:"capabilities"`
		SNAT         *bool           `json:"snat"`
	}
)

func strictDecode(t *testing.T, b []byte, v any) {
	t.Helper()
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		t.Fatalf("%T: %v in\n%s", v, err, b)
	}
}

func TestCNIConfig(t *testing.T) {
	for _, tc := range []struct {
		name    string
		podCIDR string
		mtu     int
		wantMTU int
		wantErr string // substring; "" = no error
	}{
		{"node podCIDR", "10.233.65.0/24", 0, 1450, ""},
		{"explicit MTU", "10.244.3.0/24", 8950, 8950, ""},
		{"small range", "10.0.0.0/30", 1400, 1400, ""},
		{"not a CIDR", "10.233.65.0", 0, 0, `node podCIDR "10.233.65.0"`},
		{"bad address", "10.233.650.0/24", 0, 0, "node podCIDR"},
		{"host bits", "10.233.65.1/24", 0, 0, "host bits set, the network is 10.233.65.0/24"},
		{"IPv6", "fd00:10:244::/64", 0, 0, "not IPv4"},
		{"no room", "10.233.65.0/31", 0, 0, "no room"},
		{"empty", "", 0, 0, "node podCIDR"},
		{"MTU too small", "10.233.65.0/24", 60, 0, "CNI MTU 60"},
		{"MTU negative", "10.233.65.0/24", -1, 0, "CNI MTU -1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := CNIConfig(tc.podCIDR, tc.mtu)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var l specConfList
			strictDecode(t, b, &l)
			if l.CNIVersion != "1.0.0" || l.Name != "metalk8s" || len(l.Plugins) != 2 {
				t.Fatalf("conflist head: %+v", l)
			}
			var br specBridge
			strictDecode(t, l.Plugins[0], &br)
			if br.Type != "bridge" || br.Bridge != "cni0" || !br.IsGateway || !br.IsDefaultGateway || br.IPMasq || !br.HairpinMode || br.MTU != tc.wantMTU {
				t.Errorf("bridge: %+v", br)
			}
			if br.IPAM.Type != "host-local" || len(br.IPAM.Ranges) != 1 || len(br.IPAM.Ranges[0]) != 1 || br.IPAM.Ranges[0][0].Subnet != tc.podCIDR {
				t.Errorf("ipam: %+v, want one range %s", br.IPAM, tc.podCIDR)
			}
			var pm specPortmap
			strictDecode(t, l.Plugins[1], &pm)
			if pm.Type != "portmap" || !pm.Capabilities["portMappings"] || len(pm.Capabilities) != 1 {
				t.Errorf("portmap: %+v", pm)
			}
		})
	}
}

func TestCNIConfigGolden(t *testing.T) {
	got, err := CNIConfig("10.233.65.0/24", 0)
	if err != nil {
		t.Fatal(err)
	}
	checkGolden(t, filepath.Join("testdata", "10-metalk8s.conflist"), got)
}
