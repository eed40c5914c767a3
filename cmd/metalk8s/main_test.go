package main

import (
	"io"
	"strings"
	"testing"
)

func TestFlagsFirst(t *testing.T) {
	app := newApp(io.Discard, io.Discard)
	for in, want := range map[string]string{
		"metalk8s plan hosts.ini --forks 10 --only preflight": "metalk8s plan --forks 10 --only preflight hosts.ini",
		"metalk8s up hosts.ini --force-unlock":                "metalk8s up --force-unlock hosts.ini",
		"metalk8s exec -i h.ini -- ls -l":                     "metalk8s exec -i h.ini -- ls -l",
		"metalk8s bundle build -o dir --no-images":            "metalk8s bundle build -o dir --no-images",
		"metalk8s bundle verify dir --kube-version v1.34.4":   "metalk8s bundle verify --kube-version v1.34.4 dir",
		"metalk8s version":                                    "metalk8s version",
		"metalk8s -v plan hosts.ini --forks 10":               "metalk8s -v plan --forks 10 hosts.ini",
		"metalk8s plan hosts.ini -v":                          "metalk8s plan -v hosts.ini",
		"metalk8s exec hosts.ini -l n1 -- ls -l":              "metalk8s exec -l n1 hosts.ini -- ls -l",
		"metalk8s plan hosts.ini --timeout":                   "metalk8s plan --timeout", // the flag's error
	} {
		got := strings.Join(flagsFirst(app, strings.Fields(in)), " ")
		if got != want {
			t.Errorf("%s:\n got %s\nwant %s", in, got, want)
		}
	}
}

func TestUsageExitCodes(t *testing.T) {
	for _, args := range [][]string{{"nosuch"}, {"inventory", "--bogus"}, {"up"}, {"inventory", "--list"},
		{"etcd", "snapshot", "save"}, {"etcd", "snapshot", "save", "hosts.ini"}, {"etcd", "snapshot", "save", "-i", "h.ini", "a", "b"}} {
		code, _, errOut := metalk8s(t, args...)
		if code != 2 {
			t.Errorf("%v: exit %d, want 2 (%s)", args, code, errOut)
		}
	}
	code, out, _ := metalk8s(t, "version")
	if code != 0 || !strings.HasPrefix(out, "metalk8s ") {
		t.Errorf("version: %d %q", code, out)
	}
}
