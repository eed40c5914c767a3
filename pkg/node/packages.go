package node

import (
	"context"
	"fmt"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/metalk8s/metalk8s/pkg/bundle"
	"github.com/metalk8s/metalk8s/pkg/inventory"
	"github.com/metalk8s/metalk8s/pkg/ssh"
	"github.com/metalk8s/metalk8s/pkg/steps"
)

// OSFamily names a node's release as bundles do: "debian-12".
func (f *Facts) OSFamily() string {
	major, _, _ := strings.Cut(f.OSVersion, ".")
	return f.OSID + "-" + major
}

// missingFamily explains a bundle without packages for a node's family
// fam, suggesting only --os values that bundle build accepts.
func missingFamily(fam string, have []string) error {
	if _, ok := bundle.DebFamilies[fam]; ok {
		return fmt.Errorf("the bundle has no packages for %s (it holds: %s); rebuild it with bundle build --os %s, or -i with metalk8s_os: %s on these hosts",
			fam, strings.Join(have, ", "), strings.Join(append(append([]string{}, have...), fam), ","), fam)
	}
	return fmt.Errorf("the bundle has no packages for %s (it holds: %s), and none can: bundle build --os accepts %s only",
		fam, strings.Join(have, ", "), strings.Join(bundle.DebFamilyNames(), ", "))
}

// BundlePackages returns the steps that copy the bundle's packages for
// each node's OS to it and install the node packages from them, through
// apt reading only that local repository: nothing is downloaded on nodes.
func BundlePackages(cl *inventory.Cluster, dir string, m *bundle.Manifest, store *FactStore) []*steps.Step {
	byFamily := map[string][]bundle.Package{}
	for _, p := range m.Packages {
		byFamily[p.Family] = append(byFamily[p.Family], p)
	}
	var families []string
	for f := range byFamily {
		families = append(families, f)
	}
	sort.Strings(families)
	var out []*steps.Step
	for _, n := range cl.Nodes {
		host := n.Name
		want := nodePackages(n)
		if len(want) == 0 {
			continue
		}
		facts := steps.ID("preflight/facts", host)
		upload := steps.ID("prepare/packages-upload", host)
		repo := steps.StateDir(host) + "/bundle/packages"
		pkgsFor := func() ([]bundle.Package, string, error) {
			f, err := store.Need(host)
			if err != nil {
				return nil, "", err
			}
			fam := f.OSFamily()
			pk, ok := byFamily[fam]
			if !ok {
				return nil, fam, missingFamily(fam, families)
			}
			return pk, fam, nil
		}
		out = append(out,
			&steps.Step{ID: upload, Host: host, Phase: "prepare", Deps: []string{facts, steps.ID("prepare/state-dir", host)}, Inputs: m.Packages,
				Check: func(ctx context.Context, h steps.Host) (steps.Change, error) {
					pk, _, err := pkgsFor()
					if err != nil {
						return steps.NoChange, err
					}
					missing, err := missingPackages(ctx, h, repo, pk)
					var diff []string
					for _, p := range missing {
						diff = append(diff, "+ upload "+p.Path)
					}
					return steps.Changes(diff...), err
				},
				Apply: func(ctx context.Context, h steps.Host) error {
					pk, fam, err := pkgsFor()
					if err != nil {
						return err
					}
					var files []ssh.File
					for _, p := range pk {
						files = append(files, ssh.File{Path: repo + "/" + strings.TrimPrefix(p.Path, "packages/"), Local: filepath.Join(dir, p.Path), SHA256: p.SHA256, Mode: 0o644})
					}
					if err := stage(ctx, h, files); err != nil {
						return err
					}
					// The index goes last: it names only files that are there.
					idx := path.Join("packages", fam, "Packages")
					_, err = h.Put(ctx, ssh.File{Path: repo + "/" + fam + "/Packages", Local: filepath.Join(dir, idx), Mode: 0o644})
					return err
				}},
			installStep(host, []string{upload}, want, store, "", func() (string, error) {
				_, fam, err := pkgsFor()
				return repo + "/" + fam, err
			}),
		)
	}
	return out
}

// aptFromRepo installs packages with apt reading only a local flat
// repository, leaving the node's own sources and lists untouched.
func aptFromRepo(repo string, pkgs []string) string {
	list := repo + ".list"
	opts := fmt.Sprintf("-o Dir::Etc::SourceList=%s -o Dir::Etc::SourceParts=/dev/null -o Dir::State::Lists=%s.lists -o APT::Get::List-Cleanup=0 -o APT::Sandbox::User=root",
		ssh.Quote(list), ssh.Quote(repo))
	return fmt.Sprintf("set -e; printf 'deb [trusted=yes] file:%s ./\\n' > %s; mkdir -p %s.lists/partial; "+
		"export DEBIAN_FRONTEND=noninteractive; apt-get -q %s update; apt-get -q -y --no-install-recommends %s install %s",
		repo, ssh.Quote(list), ssh.Quote(repo), opts, opts, strings.Join(pkgs, " "))
}

func missingPackages(ctx context.Context, h steps.Host, repo string, pk []bundle.Package) ([]bundle.Package, error) {
	return differing(ctx, h, pk,
		func(p bundle.Package) string { return repo + "/" + strings.TrimPrefix(p.Path, "packages/") },
		func(p bundle.Package) string { return p.SHA256 })
}

// nodePackages are the OS packages a node's roles need: the kube-proxy
// (ipvs) and kubelet tools on Kubernetes nodes; LVM and the filesystems
// its volumes use on nodes with storage. xfsprogs (which pulls in Python)
// only where a volume is xfs.
func nodePackages(n *inventory.Node) []string {
	var out []string
	if n.ControlPlane || n.Worker {
		out = append(out, "iptables", "ipvsadm", "ipset", "conntrack", "socat", "ebtables", "ethtool")
	}
	if n.Worker && len(n.Storage) > 0 {
		out = append(out, "lvm2", "e2fsprogs")
		xfs := false
		for _, vg := range n.Storage {
			for _, lv := range vg.LVs {
				xfs = xfs || lv.FSType == "xfs"
			}
		}
		if xfs {
			out = append(out, "xfsprogs")
		}
	}
	return out
}

// absentPackages lists the packages the node does not have installed,
// by their names on its OS.
func absentPackages(ctx context.Context, h steps.Host, f *Facts, want []string) ([]string, error) {
	want = packageNames(f, want)
	out, err := h.Run(ctx, queryCommand(f, want))
	if err != nil {
		return nil, err
	}
	installed := map[string]bool{}
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) == 2 && (f[1] == "ii" || f[1] == "installed") {
			installed[f[0]] = true
		}
	}
	var absent []string
	for _, p := range want {
		if !installed[p] {
			absent = append(absent, p)
		}
	}
	return absent, nil
}

// elNames are the EL names of packages Debian names otherwise.
var elNames = map[string]string{"conntrack": "conntrack-tools"}

// packageNames maps Debian package names to the node's OS.
func packageNames(f *Facts, pkgs []string) []string {
	if f.Family() != "el" {
		return pkgs
	}
	out := make([]string, len(pkgs))
	for i, p := range pkgs {
		if el, ok := elNames[p]; ok {
			p = el
		}
		out[i] = p
	}
	return out
}

// queryCommand prints "NAME ii" (dpkg) or "NAME installed" (rpm) for each
// installed package.
func queryCommand(f *Facts, pkgs []string) string {
	if f.Family() == "el" {
		return "rpm -q --qf '%{NAME} installed\\n' " + strings.Join(pkgs, " ") + " 2>/dev/null | grep ' installed$' || true"
	}
	return "dpkg-query -W -f='${Package} ${db:Status-Abbrev}\\n' " + strings.Join(pkgs, " ") + " 2>/dev/null || true"
}

// installCommand installs packages with the node's package manager: from
// the staged bundle repository when repo is set, else from the node's own
// repositories.
func installCommand(f *Facts, repo string, pkgs []string) string {
	list := strings.Join(pkgs, " ")
	switch f.PackageManager() {
	case "apt":
		if repo != "" {
			return aptFromRepo(repo, pkgs)
		}
		return "export DEBIAN_FRONTEND=noninteractive; apt-get -q update && apt-get -q -y --no-install-recommends install " + list
	default: // yum, dnf
		pm := f.PackageManager()
		if repo != "" {
			return fmt.Sprintf("%s -y --disablerepo='*' --repofrompath=metalk8s-bundle,%s --enablerepo=metalk8s-bundle --nogpgcheck install %s", pm, ssh.Quote(repo), list)
		}
		return pm + " -y install " + list
	}
}

// Packages returns, without a bundle, the steps that install the packages
// each node needs from the node's own repositories.
func Packages(cl *inventory.Cluster, store *FactStore) []*steps.Step {
	var out []*steps.Step
	for _, n := range cl.Nodes {
		host := n.Name
		want := nodePackages(n)
		if len(want) == 0 {
			continue
		}
		out = append(out, installStep(host, []string{steps.ID("prepare/state-dir", host)}, want, store,
			" (from the node's repositories)", func() (string, error) { return "", nil }))
	}
	return out
}

// installStep installs the packages of want the node lacks, from the
// repository repo returns ("": the node's own repositories); from is
// added to the plan's lines.
func installStep(host string, deps, want []string, store *FactStore, from string, repo func() (string, error)) *steps.Step {
	return &steps.Step{ID: steps.ID("prepare/packages", host), Host: host, Phase: "prepare", Deps: deps, Inputs: want,
		Check: func(ctx context.Context, h steps.Host) (steps.Change, error) {
			f, err := store.Need(host)
			if err != nil {
				return steps.NoChange, err
			}
			absent, err := absentPackages(ctx, h, f, want)
			var diff []string
			for _, p := range absent {
				diff = append(diff, "+ install "+p+from)
			}
			return steps.Changes(diff...), err
		},
		Apply: func(ctx context.Context, h steps.Host) error {
			f, err := store.Need(host)
			if err != nil {
				return err
			}
			absent, err := absentPackages(ctx, h, f, want)
			if err != nil || len(absent) == 0 {
				return err
			}
			r, err := repo()
			if err != nil {
				return err
			}
			_, err = h.Run(ctx, installCommand(f, r, absent))
			return err
		}}
}
