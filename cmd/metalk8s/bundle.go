package main

import (
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

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
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "bundle `DIR` (required)"},
					inventoryFlag, kube,
					&cli.StringFlag{Name: "mirror", Usage: "release mirror base `URL`"},
					&cli.StringFlag{Name: "registry", Usage: "image registry `HOST[:PORT]`"},
					&cli.BoolFlag{Name: "insecure-registry", Usage: "talk plain HTTP to --registry (a registry on loopback)"},
					&cli.BoolFlag{Name: "no-images", Usage: "leave the images out"},
					&cli.StringFlag{Name: "packages-from", Value: "http://deb.debian.org/debian", Usage: "Debian archive `URL` for the nodes' OS packages"},
					&cli.StringFlag{Name: "os", Value: "debian-12", Usage: "the nodes' OS `FAMILY` for packages (debian-12, debian-11)"},
					&cli.BoolFlag{Name: "no-packages", Usage: "leave the OS packages out"},
				},
				Action: func(c *cli.Context) error {
					if err := noArgs(c); err != nil {
						return err
					}
					if c.String("output") == "" {
						return usageError{"bundle build: no output directory: metalk8s bundle build -o DIR"}
					}
					v, images, err := bundleInputs(c)
					if err != nil {
						return err
					}
					var debs *bundle.DebSource
					if !c.Bool("no-packages") {
						d, err := bundle.DebSourceFor(c.String("os"), c.String("packages-from"))
						if err != nil {
							return usageError{"--os: " + err.Error()}
						}
						debs = &d
					}
					ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
					defer stop()
					m, err := bundle.Build(ctx, bundle.BuildOptions{Out: c.String("output"), Versions: v,
						Source:   bundle.Source{Mirror: c.String("mirror")},
						Registry: bundle.Registry{Host: c.String("registry"), Insecure: c.Bool("insecure-registry")},
						NoImages: c.Bool("no-images"), Images: images, Debs: debs, Log: c.App.Writer})
					if err != nil {
						return err
					}
					fmt.Fprintf(c.App.Writer, "bundle %s: %d files, %d images, %d packages for Kubernetes %s\n", c.String("output"), len(m.Files), len(m.Images), len(m.Packages), v.Kube)
					return nil
				},
			},
			{
				Name:  "versions",
				Usage: "print the component versions of a Kubernetes release as shell assignments",
				Description: "Supported releases: " + bundle.Supported() + ". One NAME=VALUE line per component\n" +
					"(KUBE_VERSION, ETCD_VERSION, ...), then one IMAGE=REFERENCE line per image of the version table\n" +
					"(the addons' charts' images depend on the inventory: bundle build -i renders them).",
				Flags: []cli.Flag{inventoryFlag, kube},
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
				Flags:     []cli.Flag{inventoryFlag, kube},
				Action: func(c *cli.Context) error {
					if c.NArg() != 1 {
						return usageError{"bundle verify: give the bundle directory: metalk8s bundle verify DIR"}
					}
					v, images, err := bundleInputs(c)
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
	return inventory.NewCluster(inv)
}

// bundleInputs reads --inventory once and returns the versions
// (bundleVersions) and the images the addons' charts run, rendered with
// the inventory's values, else with the defaults (cluster.AddonImages).
func bundleInputs(c *cli.Context) (bundle.Versions, []string, error) {
	cl, err := bundleCluster(c)
	if err != nil {
		return bundle.Versions{}, nil, err
	}
	v, err := versionsFor(c, cl)
	if err != nil {
		return v, nil, err
	}
	images, err := cluster.AddonImages(cl, v)
	return v, images, err
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
	v, err := bundle.VersionsFor(kv)
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
