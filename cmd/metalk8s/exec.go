package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"sync"

	"github.com/urfave/cli/v2"
	"golang.org/x/term"

	"github.com/metalk8s/metalk8s/pkg/inventory"
	"github.com/metalk8s/metalk8s/pkg/ssh"
)

// sshFlags are the connection settings shared by every command that
// reaches hosts.
func sshFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "known-hosts", Usage: "known_hosts `FILE` to verify host keys with (default ~/.ssh/known_hosts)"},
		&cli.BoolFlag{Name: "trust-new-hosts", Usage: "record the key of a host seen for the first time, then verify it from then on (OpenSSH's accept-new); a changed key is always refused"},
		&cli.StringFlag{Name: "bastion", Usage: "reach hosts that name no ProxyJump through `[USER@]HOST[:PORT]`"},
		&cli.BoolFlag{Name: "ask-become-pass", Aliases: []string{"K"}, Usage: "ask once for the sudo password of become hosts"},
		&cli.IntFlag{Name: "forks", Value: 50, Usage: "how many hosts to work on at once"},
		durationFlag("connect-timeout", "SSH connect `TIMEOUT` (default: the inventory's ansible_ssh_timeout, else 15s)"),
		limitFlag("timeout", "per-command `TIMEOUT` (default none)"),
	}
}

// askTTY reads a secret from the terminal, or fails when there is none.
// Tests replace it.
var askTTY = readTTY

func readTTY(prompt string) ([]byte, error) {
	tty, err := os.OpenFile("/dev/tty", os.O_RDWR, 0)
	if err != nil || !term.IsTerminal(int(tty.Fd())) {
		if tty != nil {
			tty.Close()
		}
		return nil, ssh.ErrNoTerminal
	}
	defer tty.Close()
	fmt.Fprint(tty, prompt)
	b, err := term.ReadPassword(int(tty.Fd()))
	fmt.Fprintln(tty)
	return b, err
}

func poolOptions(c *cli.Context) (ssh.Options, error) {
	opts := ssh.Options{
		KnownHosts:     c.String("known-hosts"),
		TrustNewHosts:  c.Bool("trust-new-hosts"),
		Bastion:        c.String("bastion"),
		ConnectTimeout: duration(c, "connect-timeout"),
		CommandTimeout: duration(c, "timeout"),
	}
	opts.Passphrase = func(file string) ([]byte, error) {
		return askTTY(fmt.Sprintf("Passphrase for %s: ", file))
	}
	if c.Bool("ask-become-pass") {
		pw, err := askTTY("BECOME password: ")
		if err != nil {
			return opts, usageError{fmt.Sprintf("--ask-become-pass: %v", err)}
		}
		opts.BecomePassword = string(pw)
	}
	if c.Int("forks") < 1 {
		return opts, usageError{"--forks must be at least 1"}
	}
	return opts, nil
}

func newPool(c *cli.Context) (*ssh.Pool, error) {
	opts, err := poolOptions(c)
	if err != nil {
		return nil, err
	}
	return ssh.NewPool(opts)
}

// selectHosts picks the inventory hosts --limit keeps: Ansible host
// patterns (a:b, a,b, g:!h, g:&h, node*, g[0:2], ~regex, @file), as
// ansible --limit (inventory.Limit); every host when empty. A pattern
// that matches nothing is bad input.
func selectHosts(inv *inventory.Inventory, limit string) ([]*inventory.Host, error) {
	hosts, err := inv.Limit(limit)
	if err != nil {
		return nil, usageError{"--limit: " + err.Error()}
	}
	return hosts, nil
}

func execCommand() *cli.Command {
	return &cli.Command{
		Name:      "exec",
		Usage:     "run a shell command on inventory hosts, in parallel",
		ArgsUsage: "hosts.ini -- COMMAND [ARGS...]  (or -i hosts.ini -- COMMAND [ARGS...])",
		Description: "Runs COMMAND on every selected host (through sudo where ansible_become is set)\n" +
			"and prints each host's output together. Exits 1 if any host failed. The `--`\n" +
			"ends metalk8s's flags: what follows is the command, flags included; a command\n" +
			"without flags may go without it (metalk8s exec hosts.ini uptime).",
		Flags: append([]cli.Flag{
			inventoryFlag,
			&cli.StringFlag{Name: "limit", Aliases: []string{"l"}, Usage: "only the hosts of Ansible host `PATTERN`s (a:b, a,b, g:!h, g:&h, node*, g[0:2], ~regex, @file); " +
				"beyond Ansible, kube-master, kube-node and k8s-cluster also name kube_control_plane, kube_node and k8s_cluster, and back, when the inventory has only the other spelling"},
		}, sshFlags()...),
		Action: runExec,
	}
}

type hostOutput struct {
	name string
	res  *ssh.Result
	err  error
}

func runExec(c *cli.Context) error {
	path, args := execArgs(c)
	switch {
	case path == "":
		return usageError{"exec: no inventory given: metalk8s exec hosts.ini -- COMMAND"}
	case len(args) == 0 && c.String("inventory") == "":
		return usageError{fmt.Sprintf("exec: no command after the inventory %s: metalk8s exec hosts.ini -- COMMAND", path)}
	case len(args) == 0:
		return usageError{"exec: no command: metalk8s exec hosts.ini -- COMMAND"}
	}
	command := strings.Join(args, " ")
	inv, err := inventory.Load(path)
	if err != nil {
		return err
	}
	hosts, err := selectHosts(inv, c.String("limit"))
	if err != nil {
		return err
	}
	pool, err := newPool(c)
	if err != nil {
		return err
	}
	var clients []*ssh.Client
	for _, h := range hosts {
		cfg, err := inventory.SSHFor(h)
		if err != nil {
			return err
		}
		cl, err := pool.Client(h.Name, cfg)
		if err != nil {
			return usageError{err.Error()}
		}
		clients = append(clients, cl)
	}
	ctx, stop := interruptible(c.Context, c.App.ErrWriter, "")
	defer stop()
	results := runAll(ctx, clients, c.Int("forks"), command)
	failed := printResults(c.App.Writer, results)
	if failed > 0 {
		return cli.Exit(fmt.Sprintf("exec: %d of %d hosts failed", failed, len(results)), exitFailure)
	}
	return nil
}

// execArgs splits exec's arguments into the inventory (-i, else the first
// argument) and the command, after the "--" that may end the flags.
func execArgs(c *cli.Context) (inventory string, command []string) {
	inventory, command = c.String("inventory"), c.Args().Slice()
	if inventory == "" && len(command) > 0 {
		inventory, command = command[0], command[1:]
		if len(command) > 0 && command[0] == "--" {
			command = command[1:]
		}
	}
	return inventory, command
}

func runAll(ctx context.Context, clients []*ssh.Client, forks int, command string) []hostOutput {
	out := make([]hostOutput, len(clients))
	sem := make(chan struct{}, forks)
	var wg sync.WaitGroup
	for i, cl := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			res, err := cl.Run(ctx, command)
			cl.Close()
			out[i] = hostOutput{name: cl.Name, res: res, err: err}
		}()
	}
	wg.Wait()
	return out
}

func printResults(w io.Writer, results []hostOutput) int {
	sort.SliceStable(results, func(i, j int) bool { return results[i].name < results[j].name })
	failed := 0
	for _, r := range results {
		status := "ok"
		if r.err != nil {
			failed++
			status = "FAILED"
			if code, ok := ssh.ExitCode(r.err); ok {
				status = fmt.Sprintf("FAILED rc=%d", code)
			}
		}
		fmt.Fprintf(w, "== %s: %s\n", r.name, status)
		if r.res != nil {
			w.Write(r.res.Stdout)
			if len(r.res.Stdout) > 0 && r.res.Stdout[len(r.res.Stdout)-1] != '\n' {
				fmt.Fprintln(w)
			}
			if len(r.res.Stderr) > 0 {
				fmt.Fprintf(w, "-- stderr:\n%s", r.res.Stderr)
				if r.res.Stderr[len(r.res.Stderr)-1] != '\n' {
					fmt.Fprintln(w)
				}
			}
		}
		if r.err != nil {
			if _, ok := ssh.ExitCode(r.err); !ok {
				fmt.Fprintf(w, "-- error: %v\n", r.err)
			}
		}
	}
	return failed
}
