package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/urfave/cli/v2"
	"golang.org/x/term"

	"github.com/metalk8s/metalk8s/pkg/cluster"
)

// stdinTerminal says whether reset may ask its question on standard
// input; tests replace it.
var stdinTerminal = func(c *cli.Context) bool {
	f, ok := c.App.Reader.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

func resetCommand() *cli.Command {
	return &cli.Command{
		Name:      "reset",
		Usage:     "tear the whole cluster down on every host, the scoped way remove-node does; volumes kept unless --wipe-volumes",
		ArgsUsage: "hosts.ini",
		Description: "On every host: kubeadm reset, etcd stopped and its data deleted, only\n" +
			"Kubernetes' and the pod network's chains, ipsets, nftables tables and IPVS\n" +
			"services, the CNI state, metalk8s's files and units. Other firewall rules,\n" +
			"the packages and the LVM volumes with their data stay (--wipe-volumes NODE\n" +
			"deletes a host's). On a terminal it shows what it would change, then asks;\n" +
			"elsewhere --yes is required. The journal is set aside (artifacts/journal.json.reset-RUN);\n" +
			"the CAs and keys in artifacts/pki stay, for a cluster made again.",
		Flags: append([]cli.Flag{inventoryFlag,
			&cli.BoolFlag{Name: "yes", Aliases: []string{"y"}, Usage: "do not ask: reset at once"},
			&cli.StringFlag{Name: "wipe-volumes", Usage: "also delete the LVM volumes, and their data, of these `NODES` (comma-separated)"},
			&cli.BoolFlag{Name: "force-unlock", Usage: "remove a lock left by a dead run before taking it"},
		}, sshFlags()...),
		Action: func(c *cli.Context) error {
			o := &cluster.ResetOptions{}
			if w := c.String("wipe-volumes"); w != "" {
				o.WipeVolumes = strings.Split(w, ",")
			}
			sel := selection{reset: o}
			if !c.Bool("yes") {
				if !stdinTerminal(c) {
					return usageError{"reset: deletes the cluster on every host: give --yes (there is no terminal to ask on)"}
				}
				err := runCluster(c, false, sel)
				var ec cli.ExitCoder
				switch {
				case err == nil:
					fmt.Fprintln(c.App.Writer, "reset: nothing to delete.")
					return nil
				case !errors.As(err, &ec) || ec.ExitCode() != exitPending:
					return err
				}
				ok, err := confirm(c.App.Reader, c.App.Writer, "Delete the cluster on these hosts, as listed above? Type yes: ")
				if err != nil || !ok {
					return cli.Exit("reset: not confirmed: nothing changed", exitFailure)
				}
			}
			return runCluster(c, true, sel)
		},
	}
}

// confirm asks question on w and reads one line from r: true only for
// "yes" (any case, spaces around).
func confirm(r io.Reader, w io.Writer, question string) (bool, error) {
	fmt.Fprint(w, question)
	line, err := bufio.NewReader(r).ReadString('\n')
	if err != nil && line == "" {
		return false, err
	}
	return strings.EqualFold(strings.TrimSpace(line), "yes"), nil
}
