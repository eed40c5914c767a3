package main

import (
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/metalk8s/metalk8s/pkg/bundle"
	"github.com/metalk8s/metalk8s/pkg/cluster"
	"github.com/metalk8s/metalk8s/pkg/inventory"
)

func bundleCommand() *cli.Command {
	kube := &cli.StringFlag{Name: "kube-version", Usage: "Kubernetes `VERSION` (default: the inventory's kube_version, else " + bundle.DefaultKubeVersion + ")"}
	return &cli.Command{
		Name:  "bundle",
		Usage: "gather the binaries and images nodes need, for air-gapped sites",
		Subcommands: []*cli.Command{
			{
				Name:      "build",
				Usage:     "download, check and store a release's binaries and images in a directory",
				ArgsUsage: " ",
				Description: "Sources default to the real release sites and registries. --mirror is a web\n" +
					"server laid out as <mirror>/<site>/<path> (dl.k8s.io/release/" + bundle.DefaultKubeVersion + "/bin/linux/amd64/\n" +
					"kubeadm, github.com/etcd-io/etcd/releases/download/...), checksums beside each file;\n" +
					"--registry holds the images under their upstream paths (registry.k8s.io/pause:3.10.2\n" +
					"as HOST/pause:3.10.2, docker.io/library/haproxy:2.6.12 as HOST/library/haproxy:2.6.12).\n" +
					"Every file is checked against its published SHA-256; DIR/manifest.json lists all.",
				Flags: append([]cli.Flag{
					&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "bundle `DIR` (required)"},
				}, sourceFlags(kube)...),
				Action: func(c *cli.Context) error {
					if err := noArgs(c); err != nil {
						return err
					}
					if c.String("output") == "" {
						return usageError{"bundle build: no output directory: metalk8s bundle build -o DIR"}
					}
					o, err := buildOptions(c)
					if err != nil {
						return err
					}
					ctx, stop := interruptible(c.Context, c.App.ErrWriter, "")
					defer stop()
					o.Out, o.Log = c.String("output"), c.App.Writer
					m, err := bundle.Build(ctx, o)
					if err != nil {
						return err
					}
					fmt.Fprintf(c.App.Writer, "bundle %s: %d files, %d images, %d packages for Kubernetes %s\n", c.String("output"), len(m.Files), len(m.Images), len(m.Packages), o.Versions.Kube)
					return nil
				},
			},
			{
				Name:      "list",
				Usage:     "print every URL and image that bundle build, with the same flags, fetches",
				ArgsUsage: " ",
				Description: "For the mirror team of an air-gapped site: what to allow through a proxy, or to copy\n" +
					"to --mirror and --registry. One KIND<TAB>WHERE line each: file and checksum URLs (each\n" +
					"checksum file bundle build tries, in order), packages (each OS family's index, then its\n" +
					"pool, from which the packages and their dependencies are taken), image references.\n" +
					"Nothing is fetched.",
				Flags: sourceFlags(kube),
				Action: func(c *cli.Context) error {
					if err := noArgs(c); err != nil {
						return err
					}
					o, err := buildOptions(c)
					if err != nil {
						return err
					}
					lines, err := bundle.List(o)
					if err != nil {
						return err
					}
					for _, l := range lines {
						fmt.Fprintln(c.App.Writer, l)
					}
					return nil
				},
			},
			{
				Name:  "versions",
				Usage: "print the component versions of a Kubernetes release as shell assignments",
				Description: "Supported releases: " + bundle.Supported() + ". One NAME=VALUE line per component\n" +
					"(KUBE_VERSION, ETCD_VERSION, ...), then one IMAGE=REFERENCE line per image of the version table\n" +
					"(the addons' charts' images depend on the inventory: bundle build -i renders them).",
				Flags: []cli.Flag{bundleInventoryFlag, kube},
				Action: func(c *cli.Context) error {
					if err := noArgs(c); err != nil {
						return err
					}
					v, err := bundleVersions(c)
					if err != nil {
						return err
					}
					fmt.Fprint(c.App.Writer, versionsShell(v))
					return nil
				},
			},
			{
				Name:      "verify",
				Usage:     "recheck every hash of a bundle and list what the versions need that it lacks",
				ArgsUsage: "DIR",
				Flags:     []cli.Flag{bundleInventoryFlag, kube},
				Action: func(c *cli.Context) error {
					if c.NArg() != 1 {
						return usageError{"bundle verify: give the bundle directory: metalk8s bundle verify DIR"}
					}
					_, v, images, err := bundleInputs(c)
					if err != nil {
						return err
					}
					problems, err := bundle.Verify(c.Args().First(), v, images...)
					if err != nil {
						return usageError{"bundle verify: " + err.Error()}
					}
					if len(problems) > 0 {
						return cli.Exit(fmt.Sprintf("bundle %s is not usable for Kubernetes %s:\n  %s", c.Args().First(), v.Kube, strings.Join(problems, "\n  ")), exitFailure)
					}
					fmt.Fprintf(c.App.Writer, "bundle %s: every hash checks out, complete for Kubernetes %s\n", c.Args().First(), v.Kube)
					return nil
				},
			},
		},
	}
}

// bundleCluster is --inventory's cluster, nil without one.
func bundleCluster(c *cli.Context) (*inventory.Cluster, error) {
	if c.String("inventory") == "" {
		return nil, nil
	}
	inv, err := inventory.Load(c.String("inventory"))
	if err != nil {
		return nil, err
	}
	return newCluster(c, inv)
}

// sourceFlags are bundle build's flags but -o, which bundle list shares.
func sourceFlags(kube cli.Flag) []cli.Flag {
	return []cli.Flag{
		bundleInventoryFlag, kube,
		&cli.StringFlag{Name: "mirror", Usage: "release mirror base `URL`"},
		&cli.StringFlag{Name: "registry", Usage: "image registry `HOST[:PORT]`"},
		&cli.BoolFlag{Name: "insecure-registry", Usage: "talk plain HTTP to --registry (a registry on loopback)"},
		&cli.BoolFlag{Name: "no-images", Usage: "leave the images out"},
		&cli.StringFlag{Name: "packages-from", Value: "http://deb.debian.org/debian", Usage: "Debian archive `URL` for the nodes' OS packages"},
		&cli.StringFlag{Name: "os", Usage: "the nodes' OS `FAMILIES` for packages, comma-separated: " + strings.Join(bundle.DebFamilyNames(), ", ") +
			" (default: the inventory's " + osVar + " values, else " + defaultOS + ")"},
		&cli.BoolFlag{Name: "no-packages", Usage: "leave the OS packages out"},
	}
}

// osVar names a host's OS family for bundle build -i; defaultOS is the
// family of a host that does not set it.
const (
	osVar     = "metalk8s_os"
	defaultOS = "debian-12"
)

// buildOptions are bundle build's options from the flags and the
// inventory, Out and Log aside.
func buildOptions(c *cli.Context) (bundle.BuildOptions, error) {
	cl, v, images, err := bundleInputs(c)
	if err != nil {
		return bundle.BuildOptions{}, err
	}
	o := bundle.BuildOptions{Versions: v, Images: images, NoImages: c.Bool("no-images"),
		Source:   bundle.Source{Mirror: c.String("mirror")},
		Registry: bundle.Registry{Host: c.String("registry"), Insecure: c.Bool("insecure-registry")}}
	if !c.Bool("no-packages") {
		if o.Debs, err = debSources(c, cl); err != nil {
			return o, err
		}
	}
	return o, nil
}

// debSources are the package sources of --os, else of the families the
// inventory's hosts name (metalk8s_os, default debian-12), else of
// debian-12. An unknown family is named with its host and variable.
func debSources(c *cli.Context, cl *inventory.Cluster) ([]bundle.DebSource, error) {
	mirror := c.String("packages-from")
	accepts := " (bundle build --os and " + osVar + " accept " + strings.Join(bundle.DebFamilyNames(), ", ") + "; --no-packages leaves packages out)"
	var out []bundle.DebSource
	seen := map[string]bool{}
	add := func(family, where string) error {
		family = strings.TrimSpace(family)
		if seen[family] {
			return nil
		}
		seen[family] = true
		d, err := bundle.DebSourceFor(family, mirror)
		if err != nil {
			return usageError{fmt.Sprintf("%s: no OS packages for %q%s", where, family, accepts)}
		}
		out = append(out, d)
		return nil
	}
	switch {
	case c.String("os") != "":
		for _, f := range strings.Split(c.String("os"), ",") {
			if err := add(f, "--os"); err != nil {
				return nil, err
			}
		}
	case cl != nil:
		for _, n := range cl.Nodes {
			f, where := defaultOS, ""
			if raw, set := n.Vars[osVar]; set && raw != nil {
				s, ok := raw.(string)
				if !ok {
					return nil, usageError{fmt.Sprintf("host %s: variable %s: must be a string such as %s, found %v", n.Name, osVar, defaultOS, raw)}
				}
				f, where = s, fmt.Sprintf("host %s: variable %s", n.Name, osVar)
				if src := n.Source[osVar]; src != "" {
					where += " (set in " + src + ")"
				}
			}
			if err := add(f, where); err != nil {
				return nil, err
			}
		}
	default:
		if err := add(defaultOS, "--os"); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// bundleInputs reads --inventory once and returns its cluster (nil
// without one), the versions (bundleVersions, less what the inventory
// turns off: cluster.BundleVersions) and the images the addons'
// charts run, rendered with the inventory's values, else with the
// defaults (cluster.AddonImages).
func bundleInputs(c *cli.Context) (*inventory.Cluster, bundle.Versions, []string, error) {
	cl, err := bundleCluster(c)
	if err != nil {
		return nil, bundle.Versions{}, nil, err
	}
	v, err := versionsFor(c, cl)
	if err != nil {
		return cl, v, nil, err
	}
	if v, err = cluster.BundleVersions(cl, v); err != nil {
		return cl, v, nil, err
	}
	images, err := cluster.AddonImages(cl, v)
	return cl, v, images, err
}

// bundleVersions takes --kube-version, else the inventory's kube_version.
func bundleVersions(c *cli.Context) (bundle.Versions, error) {
	if c.String("kube-version") != "" {
		return versionsFor(c, nil) // the inventory is not read
	}
	cl, err := bundleCluster(c)
	if err != nil {
		return bundle.Versions{}, err
	}
	return versionsFor(c, cl)
}

// versionsFor is bundleVersions with the inventory already read (cl, nil
// without one).
func versionsFor(c *cli.Context, cl *inventory.Cluster) (bundle.Versions, error) {
	kv := c.String("kube-version")
	if kv == "" && cl != nil {
		if s, ok := cl.ControlPlane[0].Vars["kube_version"].(string); ok {
			kv = s
		}
	}
	if kv == "" {
		kv = bundle.DefaultKubeVersion
	}
	var v bundle.Versions
	var err error
	if c.String("kube-version") != "" {
		v, err = bundle.VersionsForFlag("--kube-version", kv)
	} else {
		v, err = bundle.VersionsFor(kv)
	}
	if err != nil {
		return v, usageError{err.Error()}
	}
	return v, nil
}

// versionsShell renders v as the shell assignments of
// test/lab/artifacts/versions.sh, then the image references.
func versionsShell(v bundle.Versions) string {
	var b strings.Builder
	for _, kv := range v.ShellVars() {
		fmt.Fprintf(&b, "%s=%s\n", kv[0], kv[1])
	}
	for _, img := range bundle.Images(v) {
		fmt.Fprintf(&b, "IMAGE=%s\n", img)
	}
	return b.String()
}
