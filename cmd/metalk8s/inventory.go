package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"path/filepath"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/metalk8s/metalk8s/pkg/inventory"
)

func inventoryCommand() *cli.Command {
	return &cli.Command{
		Name:      "inventory",
		Usage:     "show an inventory as metalk8s (and Ansible) reads it",
		ArgsUsage: "[hosts.ini]",
		Description: "--list prints the same JSON document as `ansible-inventory -i FILE --list`;\n" +
			"--host prints one host's merged variables; --check validates the cluster the\n" +
			"inventory describes and prints its roles and storage.",
		Flags: []cli.Flag{
			inventoryFlag,
			&cli.BoolFlag{Name: "list", Usage: "print all groups and host variables as JSON, like ansible-inventory --list"},
			&cli.StringFlag{Name: "host", Usage: "print the merged variables of `HOST` as JSON"},
			&cli.BoolFlag{Name: "check", Usage: "validate the inventory as a metalk8s cluster"},
		},
		Action: func(c *cli.Context) error {
			modes := 0
			for _, f := range []string{"list", "host", "check"} {
				if c.IsSet(f) {
					modes++
				}
			}
			if modes != 1 {
				return usageError{"inventory: give exactly one of --list, --host HOST, --check"}
			}
			p, err := inventoryPath(c)
			if err != nil {
				return err
			}
			inv, err := inventory.Load(p)
			if err != nil {
				return err
			}
			out := c.App.Writer
			switch {
			case c.Bool("list"):
				_, err = out.Write(inventory.MarshalPython(inv.List()))
				return err
			case c.IsSet("host"):
				h, ok := inv.Hosts[c.String("host")]
				if !ok {
					return usageError{fmt.Sprintf("inventory: no host %q in %s", c.String("host"), p)}
				}
				_, err = out.Write(inventory.MarshalPython(h.Vars))
				return err
			}
			cl, err := inventory.NewCluster(inv)
			if err != nil {
				return err
			}
			printCluster(out, cl)
			return nil
		},
	}
}

func printCluster(w io.Writer, cl *inventory.Cluster) {
	names := func(ns []*inventory.Node) string {
		var s []string
		for _, n := range ns {
			s = append(s, n.Name)
		}
		return strings.Join(s, ", ")
	}
	fmt.Fprintf(w, "%s: valid\n", cl.Inventory.Path)
	for _, warn := range checkWarnings(cl) {
		fmt.Fprintf(w, "  warning: %s\n", warn)
	}
	fmt.Fprintf(w, "  control plane: %s\n", names(cl.ControlPlane))
	fmt.Fprintf(w, "  etcd:          %s\n", names(cl.Etcd))
	fmt.Fprintf(w, "  workers:       %s\n", names(cl.Workers))
	for _, n := range cl.Nodes {
		target := withLocalUser(n.SSH).Route()
		if n.SSH.Become {
			target += " (sudo)"
		}
		fmt.Fprintf(w, "  %s: ssh %s, address %s\n", n.Name, target, n.Address())
		for _, vg := range n.Storage {
			var lvs []string
			for _, lv := range vg.LVs {
				lvs = append(lvs, lv.Name+" "+lv.Size)
			}
			on := "on " + strings.Join(vg.Drives, ", ")
			if vg.Existing {
				on = "(existing: no drive listed)"
			}
			fmt.Fprintf(w, "    vg %s %s: %s\n", vg.Name, on, strings.Join(lvs, ", "))
		}
	}
}

// withLocalUser fills in the user ssh and metalk8s log in as where the
// inventory names none: the local user (ssh.c), also on jump hosts.
func withLocalUser(c inventory.SSHConfig) inventory.SSHConfig {
	me := "root"
	if u, err := user.Current(); err == nil {
		me = u.Username
	}
	if c.User == "" {
		c.User = me
	}
	jumps := make([]inventory.Hop, len(c.Jumps))
	for i, j := range c.Jumps {
		if j.User == "" {
			j.User = me
		}
		jumps[i] = j
	}
	c.Jumps = jumps
	return c
}

// checkWarnings are the inventory's own warnings (Cluster.Warnings) and
// what --check finds that Ansible accepts but that would fail a run: a
// private key file missing on this machine, two hosts on one address.
func checkWarnings(cl *inventory.Cluster) []string {
	out := append([]string{}, cl.Warnings...)
	seen := map[string]string{}
	told := map[string]bool{}
	home, _ := os.UserHomeDir()
	for _, n := range cl.Nodes {
		if n.SSH.Local() {
			continue
		}
		for _, k := range append([]string{n.SSH.KeyFile}, n.SSH.MoreKeys...) {
			p := k
			if rest, ok := strings.CutPrefix(k, "~/"); ok && home != "" {
				p = filepath.Join(home, rest)
			}
			if k != "" {
				if _, err := os.Stat(p); err != nil {
					out = append(out, fmt.Sprintf("host %s: private key %s: %v", n.Name, k, errors.Unwrap(err)))
				}
			}
		}
		for _, a := range []string{n.Address(), fmt.Sprintf("%s:%d", n.SSH.Host, n.SSH.Port)} {
			if other, ok := seen[a]; ok && other != n.Name && !told[other+" "+n.Name] {
				told[other+" "+n.Name] = true
				out = append(out, fmt.Sprintf("hosts %s and %s share the address %s", other, n.Name, a))
			}
			seen[a] = n.Name
		}
	}
	return out
}
