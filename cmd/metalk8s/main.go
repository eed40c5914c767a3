// Command metalk8s provisions an on-premises Kubernetes cluster over SSH
// from an Ansible-style inventory.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/metalk8s/metalk8s/pkg/inventory"
)

// Set by the build (-ldflags "-X main.version=...").
var version = "dev"

// Exit codes, the same for every command.
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2 // bad usage or bad input
	exitPending = 3 // plan only: changes are pending
)

const exitCodesHelp = "Exit codes: 0 success, 1 failure, 2 bad usage or bad input; plan: 3 changes pending."

func init() {
	// -v is --verbose, as in Ansible; the version is --version only.
	cli.VersionFlag = &cli.BoolFlag{Name: "version", Usage: "print the version", DisableDefaultText: true}
}

// verboseFlag is -v/--verbose, given before or after the command.
func verboseFlag() cli.Flag {
	return &cli.BoolFlag{Name: "verbose", Aliases: []string{"v"}, DisableDefaultText: true,
		Usage: "more detail on the terminal: plan, up, add-node and remove-node print each step's start and finish, with its changes (the run log is always complete)"}
}

// verbose says whether -v was given, before or after the command.
func verbose(c *cli.Context) bool {
	for _, x := range c.Lineage() {
		if x.Bool("verbose") {
			return true
		}
	}
	return false
}

// usageError marks mistakes in how metalk8s was called.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func main() {
	os.Exit(run(os.Args, os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	app := newApp(stdout, stderr)
	err := versionAlone(args)
	if err == nil {
		err = app.Run(flagsFirst(app, helpArgs(args)))
	}
	if err == nil {
		return exitOK
	}
	if msg := err.Error(); msg != "" {
		fmt.Fprintf(stderr, "metalk8s: %s\n", msg)
	}
	return exitCode(err)
}

// versionAlone refuses --version followed by a command or an argument,
// which the CLI library would ignore after printing the version (exit 0).
func versionAlone(args []string) error {
	at := 1
	version := false
	for ; at < len(args) && strings.HasPrefix(args[at], "-") && args[at] != "--"; at++ {
		version = version || args[at] == "--version" || args[at] == "-version"
	}
	if version && at < len(args) {
		return usageError{fmt.Sprintf("--version takes no command or argument (got %q): metalk8s --version or metalk8s version", strings.Join(args[at:], " "))}
	}
	return nil
}

func exitCode(err error) int {
	var ue usageError
	var ie *inventory.Error
	var ec cli.ExitCoder
	switch {
	case errors.As(err, &ue), errors.As(err, &ie):
		return exitUsage
	case errors.As(err, &ec):
		return ec.ExitCode()
	}
	return exitFailure
}

func newApp(stdout, stderr io.Writer) *cli.App {
	onUsage := func(c *cli.Context, err error, _ bool) error {
		return usageError{commandPrefix(c) + flagMessage(err.Error())}
	}
	app := &cli.App{
		Name:    "metalk8s",
		Usage:   "provision an on-premises Kubernetes cluster over SSH, from an Ansible inventory",
		Version: version,
		Description: "metalk8s reads the hosts.ini you use with Ansible and, over SSH, prepares every node,\n" +
			"builds LVM storage, an etcd cluster, a kubeadm control plane, the workers and the pod network.\n\n" +
			"Help: metalk8s help [COMMAND...], or metalk8s [COMMAND...] --help.\n\n" + exitCodesHelp,
		Writer:          stdout,
		ErrWriter:       stderr,
		HideHelpCommand: true,
		ExitErrHandler:  func(*cli.Context, error) {}, // main prints errors and picks the code
		OnUsageError:    onUsage,
		Flags:           []cli.Flag{verboseFlag()},
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return usageError{fmt.Sprintf("unknown command %q; see metalk8s --help", c.Args().First())}
			}
			return cli.ShowAppHelp(c)
		},
		Commands: []*cli.Command{
			upCommand(),
			planCommand(),
			addNodeCommand(),
			removeNodeCommand(),
			resetCommand(),
			verifyCommand(),
			inventoryCommand(),
			execCommand(),
			bundleCommand(),
			etcdCommand(),
			versionCommand(),
		},
	}
	var setUsage func(cs []*cli.Command)
	setUsage = func(cs []*cli.Command) {
		for _, c := range cs {
			c.OnUsageError = onUsage
			c.HideHelpCommand = true
			c.Flags = append(c.Flags, verboseFlag())
			if len(c.Subcommands) > 0 && c.Action == nil {
				c.Action = groupAction
			}
			setUsage(c.Subcommands)
		}
	}
	setUsage(app.Commands)
	return app
}

// groupAction runs a command that only holds subcommands: its help, or
// an error for an unknown subcommand (urfave/cli's default exits 3).
func groupAction(c *cli.Context) error {
	if c.NArg() > 0 {
		name := commandName(c)
		return usageError{fmt.Sprintf("%s: unknown command %q; see metalk8s %s --help", name, c.Args().First(), name)}
	}
	return cli.ShowSubcommandHelp(c)
}

// commandName is c's command as typed after metalk8s: "etcd snapshot".
func commandName(c *cli.Context) string {
	if c.Command == nil {
		return ""
	}
	return strings.TrimSpace(strings.TrimPrefix(c.Command.HelpName, c.App.Name))
}

// commandPrefix is "NAME: " for a command's errors, "" at the top level.
func commandPrefix(c *cli.Context) string {
	if n := commandName(c); n != "" {
		return n + ": "
	}
	return ""
}

// goFlag is a flag as Go's flag package names it in its errors: "-forks".
var goFlag = regexp.MustCompile(`(^|[ :])-([A-Za-z][\w-]*)`)

// flagMessage rewrites the errors of Go's flag package in metalk8s's
// terms: "flag provided but not defined: -bogus" is "unknown flag --bogus".
func flagMessage(msg string) string {
	msg = strings.Replace(msg, "flag provided but not defined: ", "unknown flag ", 1)
	msg = strings.Replace(msg, " for flag -", " for -", 1)
	return goFlag.ReplaceAllStringFunc(msg, func(m string) string {
		i := strings.IndexByte(m, '-')
		if len(m)-i-1 > 1 {
			return m[:i] + "--" + m[i+1:]
		}
		return m
	})
}

// flagsFirst moves a command's flags before its arguments, so that
// "metalk8s plan hosts.ini --forks 10" works as operators type it.
func flagsFirst(app *cli.App, args []string) []string {
	at := 1 // the command, after the global flags (-v)
	for at < len(args) && strings.HasPrefix(args[at], "-") && args[at] != "--" {
		at++
	}
	if len(args) < at+2 {
		return args
	}
	cmd := app.Command(args[at])
	if cmd == nil {
		return args
	}
	start := at + 1
	for start < len(args) && len(cmd.Subcommands) > 0 {
		sub := cmd.Command(args[start])
		if sub == nil {
			break
		}
		cmd, start = sub, start+1
	}
	takesValue := map[string]bool{}
	for _, f := range cmd.Flags {
		_, isBool := f.(*cli.BoolFlag)
		for _, n := range f.Names() {
			takesValue[n] = !isBool
		}
	}
	var flags, rest []string
	i := start
	for ; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			break
		}
		if strings.HasPrefix(a, "-") && len(a) > 1 {
			flags = append(flags, a)
			name := strings.TrimLeft(a, "-")
			if takesValue[name] && !strings.Contains(a, "=") {
				if i+1 == len(args) { // no value: the flag's error, not the inventory as its value
					return append(append([]string{}, args[:start]...), flags...)
				}
				i++
				flags = append(flags, args[i])
			}
			continue
		}
		rest = append(rest, a)
	}
	out := append(append([]string{}, args[:start]...), flags...)
	out = append(out, rest...)
	return append(out, args[i:]...)
}

// bundleInventoryFlag is the bundle commands' -i: their arguments are
// directories, so the inventory is only a flag.
var bundleInventoryFlag = &cli.StringFlag{Name: "inventory", Aliases: []string{"i"},
	Usage: "Ansible INI inventory `FILE` to read versions and OS families from"}

// inventoryFlag is the inventory path, as -i like Ansible or as the first argument.
var inventoryFlag = &cli.StringFlag{
	Name:    "inventory",
	Aliases: []string{"i"},
	Usage:   "Ansible INI inventory `FILE` (or give it as the first argument)",
}

func inventoryPath(c *cli.Context) (string, error) {
	p := c.String("inventory")
	if c.Command.Name == "add-node" || c.Command.Name == "remove-node" { // CMD hosts.ini NODE...: the hosts follow
		if p == "" && c.NArg() > 0 {
			p = c.Args().First()
		}
	} else if c.NArg() > 0 {
		if p != "" {
			return "", usageError{fmt.Sprintf("%s: give the inventory once, as -i or as an argument", commandName(c))}
		}
		if c.NArg() > 1 {
			return "", usageError{fmt.Sprintf("%s: unexpected arguments after the inventory: %v", commandName(c), c.Args().Slice()[1:])}
		}
		p = c.Args().First()
	}
	if p == "" {
		return "", usageError{fmt.Sprintf("%s: no inventory given: metalk8s %s hosts.ini", commandName(c), commandName(c))}
	}
	return p, nil
}

// noArgs refuses arguments to a command that takes none.
func noArgs(c *cli.Context) error {
	if c.NArg() > 0 {
		return usageError{fmt.Sprintf("%s: unexpected arguments: %s", commandName(c), strings.Join(c.Args().Slice(), " "))}
	}
	return nil
}

// loadCluster reads and validates the inventory.
func loadCluster(c *cli.Context) (*inventory.Cluster, error) {
	p, err := inventoryPath(c)
	if err != nil {
		return nil, err
	}
	inv, err := inventory.Load(p)
	if err != nil {
		return nil, err
	}
	return newCluster(c, inv)
}

// newCluster is inventory.NewCluster, its warnings printed on stderr
// ("metalk8s: warning: ...", one line each).
func newCluster(c *cli.Context, inv *inventory.Inventory) (*inventory.Cluster, error) {
	cl, err := inventory.NewCluster(inv)
	if err != nil {
		return nil, err
	}
	for _, w := range cl.Warnings {
		fmt.Fprintf(c.App.ErrWriter, "metalk8s: warning: %s\n", w)
	}
	return cl, nil
}

// helpArgs rewrites "metalk8s [FLAGS] help [COMMAND...]" as
// "metalk8s [FLAGS] [COMMAND...] --help" (git's habit); other arguments
// are returned as they are. urfave/cli's own help command stays hidden:
// a command named help would drop its --help flag, and each group's
// unknown-command error is ours.
func helpArgs(args []string) []string {
	at := 1
	for at < len(args) && strings.HasPrefix(args[at], "-") && args[at] != "--" {
		at++
	}
	if at >= len(args) || args[at] != "help" {
		return args
	}
	return append(slices.Concat(args[:at], args[at+1:]), "--help")
}

func versionCommand() *cli.Command {
	return &cli.Command{
		Name:  "version",
		Usage: "print the version of metalk8s",
		Action: func(c *cli.Context) error {
			if err := noArgs(c); err != nil {
				return err
			}
			fmt.Fprintf(c.App.Writer, "metalk8s version %s\n", version) // as --version
			return nil
		},
	}
}
