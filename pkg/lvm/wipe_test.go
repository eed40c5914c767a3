package lvm

import (
	"context"
	"testing"

	"github.com/metalk8s/metalk8s/pkg/inventory"
	"github.com/metalk8s/metalk8s/pkg/ssh"
)

// dryHost answers every command with out (the wipe script's dry run).
type dryHost string

func (h dryHost) Name() string                                { return "n1" }
func (h dryHost) Run(context.Context, string) ([]byte, error) { return []byte(h), nil }
func (h dryHost) Put(context.Context, ssh.File) (bool, error) { return false, nil }

// Deleting volumes is destructive; nothing left to delete is no change.
func TestWipeStepDestructive(t *testing.T) {
	n := &inventory.Node{Name: "n1", Storage: []inventory.VG{{Name: "vg", LVs: []inventory.LV{{Name: "lv01"}, {Name: "lv02"}}}}}
	s := WipeStep(n, nil)
	ch, err := s.Check(context.Background(), dryHost("vg/lv01\nvg/lv02\n"))
	if err != nil || !ch.Needed || ch.Destructive != "delete logical volumes vg/lv01, vg/lv02 and their data" {
		t.Errorf("volumes left: %+v %v", ch, err)
	}
	ch, err = s.Check(context.Background(), dryHost(""))
	if err != nil || ch.Needed || ch.Destructive != "" {
		t.Errorf("none left: %+v %v", ch, err)
	}
}
