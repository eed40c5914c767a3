package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/metalk8s/metalk8s/pkg/cluster"
	"github.com/metalk8s/metalk8s/pkg/etcd"
	"github.com/metalk8s/metalk8s/pkg/inventory"
	"github.com/metalk8s/metalk8s/pkg/ssh"
)

func etcdCommand() *cli.Command {
	flags := append([]cli.Flag{inventoryFlag}, sshFlags()...)
	return &cli.Command{
		Name:  "etcd",
		Usage: "look at the etcd cluster, save snapshots",
		Subcommands: []*cli.Command{
			{
				Name:      "status",
				Usage:     "members, their health and the leader",
				ArgsUsage: "hosts.ini",
				Flags:     flags,
				Action:    runEtcdStatus,
			},
			{
				Name:  "snapshot",
				Usage: "etcd snapshots",
				Subcommands: []*cli.Command{{
					Name:      "save",
					Usage:     "save a snapshot of the etcd data to FILE (0600), from a healthy member",
					ArgsUsage: "hosts.ini FILE  (or -i hosts.ini FILE)",
					Flags:     flags,
					Action:    runEtcdSnapshot,
				}},
			},
		},
	}
}

// etcdHosts is the etcd side of an inventory: its PKI and a connection to
// every etcd host.
type etcdHosts struct {
	pki     *etcd.PKI
	dialers map[string]etcd.Dialer
	close   func()
}

// openEtcd loads the inventory at path and prepares connections to its
// etcd hosts (made on first use).
func openEtcd(c *cli.Context, path string) (*etcdHosts, error) {
	inv, err := inventory.Load(path)
	if err != nil {
		return nil, err
	}
	cl, err := newCluster(c, inv)
	if err != nil {
		return nil, err
	}
	if len(cl.Etcd) == 0 {
		return nil, usageError{fmt.Sprintf("%s: no host in the etcd group", path)}
	}
	pkiDir := filepath.Join(cluster.ArtifactsDir(cl), "pki")
	e := &etcdHosts{pki: &etcd.PKI{Dir: filepath.Join(pkiDir, "etcd")}, dialers: map[string]etcd.Dialer{}}
	if _, err := e.pki.ClientTLS(); err != nil {
		var me *etcd.MissingError
		if errors.As(err, &me) {
			return nil, usageError{fmt.Sprintf("%s: missing %s (the etcd client's files); the cluster's PKI lives in %s: restore it from your backup, or run `metalk8s up %s`, which restores it from the nodes",
				commandName(c), strings.Join(me.Files, ", "), pkiDir, path)}
		}
		return nil, fmt.Errorf("%s: %w", commandName(c), err)
	}
	pool, err := newPool(c)
	if err != nil {
		return nil, err
	}
	var clients []*ssh.Client
	e.close = func() {
		for _, c := range clients {
			c.Close()
		}
	}
	for _, n := range cl.Etcd {
		cli, err := pool.Client(n.Name, n.SSH)
		if err != nil {
			e.close()
			return nil, err
		}
		clients = append(clients, cli)
		e.dialers[n.Name] = cli
	}
	return e, nil
}

func runEtcdStatus(c *cli.Context) error {
	path, err := inventoryPath(c)
	if err != nil {
		return err
	}
	e, err := openEtcd(c, path)
	if err != nil {
		return err
	}
	defer e.close()
	ctx, cancel := context.WithTimeout(c.Context, 2*time.Minute)
	defer cancel()
	out := c.App.Writer
	bad := 0
	healthy := map[string]etcd.Dialer{}
	for _, h := range etcd.Healthy(ctx, e.pki, e.dialers) {
		switch {
		case h.Healthy && h.Leader:
			fmt.Fprintf(out, "%-16s healthy (leader)\n", h.Name)
		case h.Healthy:
			fmt.Fprintf(out, "%-16s healthy\n", h.Name)
		default:
			bad++
			fmt.Fprintf(out, "%-16s UNHEALTHY: %v\n", h.Name, h.Err)
		}
		if h.Healthy {
			healthy[h.Name] = e.dialers[h.Name]
		}
	}
	if len(healthy) > 0 {
		if err := printMembers(ctx, out, e, healthy); err != nil {
			return err
		}
	}
	if bad > 0 {
		return fmt.Errorf("%d of %d etcd members unhealthy", bad, len(e.dialers))
	}
	return nil
}

// printMembers prints the cluster's member list as etcd has it ("members:
// node1, node2"), asked through the healthy members, and a line for each
// member the inventory's etcd group does not hold and each host of it
// that is no member: what remove-node or add-node leave to do.
func printMembers(ctx context.Context, out io.Writer, e *etcdHosts, healthy map[string]etcd.Dialer) error {
	c, err := etcd.Client(ctx, e.pki, healthy)
	if err != nil {
		return err
	}
	defer c.Close()
	urls, _, err := etcd.Members(ctx, c)
	if err != nil {
		return err
	}
	var names []string
	for name := range urls {
		if name == "" {
			name = "(added, not started)"
		}
		names = append(names, name)
	}
	sort.Strings(names)
	fmt.Fprintf(out, "members: %s\n", strings.Join(names, ", "))
	for _, name := range names {
		if _, ok := e.dialers[name]; !ok && urls[name] != nil {
			fmt.Fprintf(out, "%-16s a member, not in the inventory's etcd group: remove-node it (keep it in the inventory until then)\n", name)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(e.dialers)) {
		if urls[name] == nil {
			fmt.Fprintf(out, "%-16s in the inventory's etcd group, not a member: add-node it\n", name)
		}
	}
	return nil
}

func runEtcdSnapshot(c *cli.Context) error {
	inv, file := c.String("inventory"), ""
	switch {
	case inv != "" && c.NArg() == 1:
		file = c.Args().First()
	case inv == "" && c.NArg() == 2:
		inv, file = c.Args().First(), c.Args().Get(1)
	default:
		return usageError{"etcd snapshot save: want hosts.ini FILE (or -i hosts.ini FILE)"}
	}
	if st, err := os.Stat(filepath.Dir(file)); err != nil || !st.IsDir() {
		return usageError{fmt.Sprintf("etcd snapshot save: %s is not a directory to save %s in", filepath.Dir(file), file)}
	}
	e, err := openEtcd(c, inv)
	if err != nil {
		return err
	}
	defer e.close()
	ctx, cancel := context.WithTimeout(c.Context, 30*time.Minute)
	defer cancel()
	cli, err := etcd.Client(ctx, e.pki, e.dialers)
	if err != nil {
		return err
	}
	defer cli.Close()
	rc, err := cli.Snapshot(ctx)
	if err != nil {
		return fmt.Errorf("etcd snapshot: %w", err)
	}
	defer rc.Close()
	tmp, err := os.CreateTemp(filepath.Dir(file), ".snapshot-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	n, err := io.Copy(tmp, rc)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("etcd snapshot: %w", err)
	}
	if err := os.Chmod(tmp.Name(), 0o600); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), file); err != nil {
		return err
	}
	fmt.Fprintf(c.App.Writer, "snapshot saved to %s (%d bytes)\n", file, n)
	return nil
}
