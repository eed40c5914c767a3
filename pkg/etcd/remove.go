package etcd

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// CheckRemoval says why removing the member name from a cluster whose
// members answered health would lose etcd's quorum, or nil: the members
// left (len(health)-1) must keep a majority of them healthy, and one must
// be left (etcd's rule for a safe member removal: remove a member only
// when the rest still form a quorum). A member not in health is an error.
func CheckRemoval(health []Health, name string) error {
	var found bool
	var healthy, down []string
	for _, h := range health {
		switch {
		case h.Name == name:
			found = true
		case h.Healthy:
			healthy = append(healthy, h.Name)
		default:
			down = append(down, h.Name)
		}
	}
	if !found {
		return fmt.Errorf("%s is not an etcd member", name)
	}
	left := len(health) - 1
	if left == 0 {
		return fmt.Errorf("%s is the only etcd member: removing it would remove the cluster's data", name)
	}
	if quorum := left/2 + 1; len(healthy) < quorum {
		sort.Strings(down)
		return fmt.Errorf("removing %s would leave %d members with %d healthy (%s down), fewer than a quorum of %d: bring them back first",
			name, left, len(healthy), strings.Join(down, ", "), quorum)
	}
	return nil
}

// RemoveMember removes the member whose peer URL is peerURL (a member is
// known by its peer URL, not its name: one added but not started has
// none), with c; gone already is not an error. It reports whether it
// removed one.
func RemoveMember(ctx context.Context, c *clientv3.Client, peerURL string) (bool, error) {
	_, ids, err := Members(ctx, c)
	if err != nil {
		return false, err
	}
	id, ok := ids[peerURL]
	if !ok {
		return false, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if _, err := c.MemberRemove(ctx, id); err != nil {
		return false, fmt.Errorf("etcd member remove %s (%x): %w", peerURL, id, err)
	}
	return true, nil
}
