package pki

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// The running cluster is the PKI's source of truth (issue 14): when the
// local copy of a CA (artifacts/pki) is missing, it is recovered from the
// nodes that hold it, never made anew; when it differs, the run stops.

// Source is one file of the PKI: its local copy and where nodes hold it.
type Source struct {
	Local string   // slash path relative to artifacts/pki: "kubernetes/ca.key"
	Node  string   // absolute path on the nodes: "/etc/kubernetes/pki/ca.key"
	Hosts []string // inventory hosts that may hold it
}

// Pair is two files that belong together: a certificate and its key, or
// sa.key and sa.pub.
type Pair struct {
	Files [2]Source
	// Trusted: a CA or the service-account key, which the cluster trusts.
	// A local copy that differs from the nodes' is an error, and one the
	// nodes do not all share too. Otherwise (a leaf) the pair is restored
	// only when both files are missing locally and the nodes agree, else
	// left to the renewal rules.
	Trusted bool
}

// KubernetesPairs are the Kubernetes CAs and service-account key, held by
// the control planes in /etc/kubernetes/pki (kubeadm's layout), kept in
// artifacts/pki/kubernetes.
func KubernetesPairs(controlPlanes []string) []Pair {
	pair := func(a, b string) Pair {
		src := func(name string) Source {
			return Source{Local: "kubernetes/" + name, Node: "/etc/kubernetes/pki/" + name, Hosts: controlPlanes}
		}
		return Pair{Files: [2]Source{src(a), src(b)}, Trusted: true}
	}
	return []Pair{pair("ca.crt", "ca.key"), pair("front-proxy-ca.crt", "front-proxy-ca.key"), pair("sa.key", "sa.pub")}
}

// Restore is one file to copy from a node to the local PKI.
type Restore struct {
	Local string // as in Source
	From  string // host
	Data  []byte
}

// Line is the plan's line for r: "~ restore pki/kubernetes/ca.key from node1".
func (r Restore) Line() string { return "~ restore pki/" + r.Local + " from " + r.From }

// Held is what the nodes hold: host -> node path -> content. A host
// without a file has no entry for it.
type Held map[string]map[string][]byte

// MismatchError says which local files differ from the nodes', or which
// nodes disagree, and how to put it right.
type MismatchError struct {
	Dir      string   // artifacts/pki
	Differ   []string // "pki/kubernetes/ca.crt differs from node1:/etc/kubernetes/pki/ca.crt"
	Disagree []string // "/etc/kubernetes/pki/ca.crt: node1, node2 hold one copy, node3 another"
	Lost     []string // "pki/etcd/ca.key: missing here and on every node (...)"
}

func (e *MismatchError) Error() string {
	var b strings.Builder
	if len(e.Differ) > 0 {
		fmt.Fprintf(&b, "the PKI in %s is not the one the cluster's nodes trust:\n  %s\n", e.Dir, strings.Join(e.Differ, "\n  "))
		b.WriteString("The nodes' copy is the cluster's: delete the local files named above and run again to recover them from the nodes (a CA is only replaced by an explicit rotation, never by plan or up).\n")
	}
	if len(e.Disagree) > 0 {
		fmt.Fprintf(&b, "the cluster's nodes do not hold the same CA files:\n  %s\n", strings.Join(e.Disagree, "\n  "))
		b.WriteString("Copy the right files to the nodes that differ (or remove them there), then run again.\n")
	}
	if len(e.Lost) > 0 {
		fmt.Fprintf(&b, "CA files that cannot be recovered:\n  %s\n", strings.Join(e.Lost, "\n  "))
		b.WriteString("Restore them into " + e.Dir + " from a backup.\n")
	}
	return strings.TrimSuffix(b.String(), "\n")
}

// Decide compares the local PKI in dir (artifacts/pki) with what the nodes
// hold and returns the files to restore locally, in pairs' order. Nodes
// holding nothing means nothing to do (the PKI steps make new CAs). Errors:
// a *MismatchError (a trusted file differs from the nodes', the nodes
// disagree, or a trusted file is missing both here and on the nodes while
// its pair is on them), or a local file that cannot be read.
func Decide(dir string, pairs []Pair, held Held) ([]Restore, error) {
	mis := &MismatchError{Dir: dir}
	var out []Restore
	for _, p := range pairs {
		var node [2]*copyOf
		any, split := false, false
		for i, src := range p.Files {
			c, disagree := nodeCopy(src, held)
			if disagree != "" {
				split = true
				if p.Trusted {
					mis.Disagree = append(mis.Disagree, disagree)
				}
			}
			node[i] = c
			any = any || c != nil
		}
		if !any || split {
			continue
		}
		var local [2][]byte
		for i, src := range p.Files {
			data, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(src.Local)))
			if err != nil && !errors.Is(err, fs.ErrNotExist) {
				return nil, fmt.Errorf("read the local PKI: %w", err)
			}
			local[i] = data
		}
		if !p.Trusted {
			if local[0] == nil && local[1] == nil && node[0] != nil && node[1] != nil {
				for i, src := range p.Files {
					out = append(out, Restore{Local: src.Local, From: node[i].hosts[0], Data: node[i].data})
				}
			}
			continue
		}
		for i, src := range p.Files {
			switch c := node[i]; {
			case c == nil && local[i] == nil:
				mis.Lost = append(mis.Lost, fmt.Sprintf("pki/%s: missing here and on every node, which hold %s (%s)",
					src.Local, p.Files[1-i].Node, strings.Join(node[1-i].hosts, ", ")))
			case c == nil:
				// Only here: the steps that install it will copy it.
			case local[i] == nil:
				out = append(out, Restore{Local: src.Local, From: c.hosts[0], Data: c.data})
			case !same(local[i], c.data):
				mis.Differ = append(mis.Differ, fmt.Sprintf("pki/%s differs from %s:%s", src.Local, c.hosts[0], src.Node))
			}
		}
	}
	if len(mis.Differ)+len(mis.Disagree)+len(mis.Lost) > 0 {
		return nil, mis
	}
	return out, nil
}

// copyOf is one content of a node file and the hosts holding it.
type copyOf struct {
	data  []byte
	hosts []string
}

// nodeCopy is the one content the hosts of src hold, nil when none holds
// it, or a description of their disagreement.
func nodeCopy(src Source, held Held) (*copyOf, string) {
	var copies []*copyOf
	for _, h := range src.Hosts {
		data, ok := held[h][src.Node]
		if !ok {
			continue
		}
		found := false
		for _, c := range copies {
			if same(c.data, data) {
				c.hosts, found = append(c.hosts, h), true
				break
			}
		}
		if !found {
			copies = append(copies, &copyOf{data: data, hosts: []string{h}})
		}
	}
	switch len(copies) {
	case 0:
		return nil, ""
	case 1:
		return copies[0], ""
	}
	sort.SliceStable(copies, func(i, j int) bool { return len(copies[i].hosts) > len(copies[j].hosts) })
	var parts []string
	for i, c := range copies {
		what := "one copy"
		if i > 0 {
			what = "another"
		}
		verb := "holds"
		if len(c.hosts) > 1 {
			verb = "hold"
		}
		parts = append(parts, fmt.Sprintf("%s %s %s", strings.Join(c.hosts, ", "), verb, what))
	}
	return nil, src.Node + ": " + strings.Join(parts, "; ")
}

// same compares two PEM files, ignoring surrounding white space.
func same(a, b []byte) bool { return bytes.Equal(bytes.TrimSpace(a), bytes.TrimSpace(b)) }

// WriteRestores writes the restored files under dir (artifacts/pki), 0600
// in 0700 directories, each atomically (WriteFiles).
func WriteRestores(dir string, rs []Restore) error {
	var files []File
	for _, r := range rs {
		files = append(files, File{Path: filepath.Join(dir, filepath.FromSlash(r.Local)), Data: r.Data})
	}
	if len(files) == 0 {
		return nil
	}
	return WriteFiles(files...)
}
