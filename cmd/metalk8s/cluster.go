package main

import (
	"fmt"

	"github.com/urfave/cli/v2"
)

// notBuilt answers for a command whose engine does not exist yet.
func notBuilt(c *cli.Context, what string) error {
	if _, err := loadCluster(c); err != nil {
		return err
	}
	return cli.Exit(fmt.Sprintf("metalk8s %s: not built yet (%s); the inventory is valid", c.Command.Name, what), exitFailure)
}

func upCommand() *cli.Command {
	return &cli.Command{
		Name:      "up",
		Usage:     "bring the cluster described by the inventory up to date",
		ArgsUsage: "hosts.ini",
		Flags:     []cli.Flag{inventoryFlag},
		Action: func(c *cli.Context) error {
			return notBuilt(c, "the step-graph executor comes next")
		},
	}
}

func planCommand() *cli.Command {
	return &cli.Command{
		Name:      "plan",
		Usage:     "show what up would change, without changing anything",
		ArgsUsage: "hosts.ini",
		Flags:     []cli.Flag{inventoryFlag},
		Action: func(c *cli.Context) error {
			return notBuilt(c, "the step-graph executor comes next")
		},
	}
}

func addNodeCommand() *cli.Command {
	return &cli.Command{
		Name:      "add-node",
		Usage:     "join the hosts added to the inventory to the cluster",
		ArgsUsage: "hosts.ini",
		Flags:     []cli.Flag{inventoryFlag},
		Action: func(c *cli.Context) error {
			return notBuilt(c, "joining nodes needs the control plane")
		},
	}
}
