package steps

import (
	"fmt"
	"sort"
	"strings"
)

// Graph is a validated set of steps.
type Graph struct {
	Steps []*Step // in the order they were added
	byID  map[string]*Step
	users map[string][]*Step // dependants of each step
}

// NewGraph checks that IDs are unique, dependencies exist and there is
// no cycle.
func NewGraph(steps []*Step) (*Graph, error) {
	g := &Graph{Steps: steps, byID: make(map[string]*Step, len(steps)), users: map[string][]*Step{}}
	for _, s := range steps {
		if s.ID == "" || s.Host == "" || s.Check == nil {
			return nil, fmt.Errorf("step %q: an ID, a host and a Check are required", s.ID)
		}
		if phaseIndex(s.Phase) < 0 {
			return nil, fmt.Errorf("step %s: unknown phase %q", s.ID, s.Phase)
		}
		if _, dup := g.byID[s.ID]; dup {
			return nil, fmt.Errorf("step %s is defined twice", s.ID)
		}
		g.byID[s.ID] = s
	}
	for _, s := range steps {
		for _, d := range s.Deps {
			dep, ok := g.byID[d]
			if !ok {
				return nil, &MissingDepError{Step: s.ID, Dep: d}
			}
			if phaseIndex(dep.Phase) > phaseIndex(s.Phase) {
				return nil, fmt.Errorf("step %s (phase %s) depends on %s of a later phase (%s)", s.ID, s.Phase, d, dep.Phase)
			}
			g.users[d] = append(g.users[d], s)
		}
	}
	if cycle := g.findCycle(); cycle != nil {
		return nil, fmt.Errorf("steps depend on each other in a loop: %s", strings.Join(cycle, " -> "))
	}
	return g, nil
}

// Step returns the step with this ID.
func (g *Graph) Step(id string) *Step { return g.byID[id] }

func (g *Graph) findCycle() []string {
	const (
		white = iota
		grey
		black
	)
	color := map[string]int{}
	var stack []string
	var cycle []string
	var visit func(id string) bool
	visit = func(id string) bool {
		color[id] = grey
		stack = append(stack, id)
		for _, d := range g.byID[id].Deps {
			switch color[d] {
			case grey:
				for i, x := range stack {
					if x == d {
						cycle = append(append([]string{}, stack[i:]...), d)
					}
				}
				return true
			case white:
				if visit(d) {
					return true
				}
			}
		}
		stack = stack[:len(stack)-1]
		color[id] = black
		return false
	}
	for _, s := range g.Steps {
		if color[s.ID] == white && visit(s.ID) {
			return cycle
		}
	}
	return nil
}

// Hosts returns the hosts that have steps, sorted.
func (g *Graph) Hosts() []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range g.Steps {
		if !seen[s.Host] {
			seen[s.Host] = true
			out = append(out, s.Host)
		}
	}
	sort.Strings(out)
	return out
}

// MissingDepError is a graph whose step depends on a step it lacks: a
// bug, or (for a cluster's graph) a bundle without a component the
// inventory needs.
type MissingDepError struct{ Step, Dep string }

func (e *MissingDepError) Error() string {
	return fmt.Sprintf("step %s depends on %s, which does not exist", e.Step, e.Dep)
}
