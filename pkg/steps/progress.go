package steps

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"
)

// Lines prints one timestamped line per finished step: for logs, CI and
// anything that is not a terminal.
type Lines struct {
	W io.Writer
	// Verbose also prints a line when a step starts, the changes of a
	// step that would change and what a blocked step waited for.
	Verbose bool
	mu      sync.Mutex
}

func (l *Lines) Started(s *Step) {
	if !l.Verbose {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(l.W, "%s %-12s %-28s started\n", time.Now().Format("15:04:05"), s.Host, s.Name())
}

func (l *Lines) Finished(o *Outcome) {
	l.mu.Lock()
	defer l.mu.Unlock()
	what := string(o.Status)
	if o.Status == StatusPending {
		what = "would change"
	}
	fmt.Fprintf(l.W, "%s %-12s %-28s %s", time.Now().Format("15:04:05"), o.Step.Host, o.Step.Name(), what)
	if o.Took > 0 {
		fmt.Fprintf(l.W, " (%s)", o.Took.Round(10*time.Millisecond))
	}
	if o.Change.Note != "" {
		fmt.Fprintf(l.W, " (%s)", o.Change.Note)
	}
	if o.Err != nil && (o.Status != StatusBlocked || l.Verbose) {
		fmt.Fprintf(l.W, ": %v", o.Err)
	}
	fmt.Fprintln(l.W)
	if o.Status == StatusChanged || (l.Verbose && o.Status == StatusPending) {
		for _, d := range o.Change.Diff {
			fmt.Fprintf(l.W, "%s %-12s   %s\n", strings.Repeat(" ", 8), "", d)
		}
	}
	for _, w := range o.Change.Warnings {
		fmt.Fprintf(l.W, "%s %-12s   ! %s\n", strings.Repeat(" ", 8), "", w)
	}
}

// Live redraws a per-host view on a terminal: what each host is doing,
// and counts; failures stay on screen.
type Live struct {
	W     io.Writer
	Total int

	mu       sync.Mutex
	current  map[string]string
	done     map[Status]int
	failures []string
	drawn    int
	stop     chan struct{}
	wg       sync.WaitGroup
}

// Start begins redrawing; Stop ends it.
func (v *Live) Start() {
	v.current, v.done, v.stop = map[string]string{}, map[Status]int{}, make(chan struct{})
	v.wg.Add(1)
	go func() {
		defer v.wg.Done()
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				v.draw()
			case <-v.stop:
				v.draw()
				return
			}
		}
	}()
}

func (v *Live) Stop() {
	close(v.stop)
	v.wg.Wait()
}

func (v *Live) Started(s *Step) {
	v.mu.Lock()
	v.current[s.Host] = s.Name()
	v.mu.Unlock()
}

func (v *Live) Finished(o *Outcome) {
	v.mu.Lock()
	defer v.mu.Unlock()
	delete(v.current, o.Step.Host)
	v.done[o.Status]++
	if o.Status == StatusFailed || o.Status == StatusCanceled {
		v.failures = append(v.failures, fmt.Sprintf("✗ %s %s: %v", o.Step.Host, o.Step.Name(), o.Err))
	}
}

func (v *Live) draw() {
	v.mu.Lock()
	defer v.mu.Unlock()
	var lines []string
	n := 0
	for _, c := range v.done {
		n += c
	}
	lines = append(lines, fmt.Sprintf("[%d/%d] %d unchanged, %d changed, %d to change, %d failed, %d blocked",
		n, v.Total, v.done[StatusOK], v.done[StatusChanged], v.done[StatusPending], v.done[StatusFailed], v.done[StatusBlocked]))
	hosts := make([]string, 0, len(v.current))
	for h := range v.current {
		hosts = append(hosts, h)
	}
	sort.Strings(hosts)
	const maxShown = 15
	for i, h := range hosts {
		if i == maxShown {
			lines = append(lines, fmt.Sprintf("  … and %d more hosts", len(hosts)-maxShown))
			break
		}
		lines = append(lines, fmt.Sprintf("  %-14s %s", h, v.current[h]))
	}
	lines = append(lines, v.failures...)
	var b strings.Builder
	if v.drawn > 0 {
		fmt.Fprintf(&b, "\x1b[%dF", v.drawn) // back to the first line drawn
	}
	for _, l := range lines {
		b.WriteString("\x1b[2K" + l + "\n")
	}
	for i := len(lines); i < v.drawn; i++ {
		b.WriteString("\x1b[2K\n")
	}
	if len(lines) > v.drawn {
		v.drawn = len(lines)
	}
	io.WriteString(v.W, b.String())
}

// Summary writes the table of hosts × steps at the end of a run.
func Summary(w io.Writer, r *Report) {
	var names []string
	col := map[string]int{}
	for _, s := range r.Graph.Steps {
		if _, ok := col[s.Name()]; !ok {
			col[s.Name()] = len(names)
			names = append(names, s.Name())
		}
	}
	glyph := map[Status]string{StatusOK: ".", StatusChanged: "+", StatusPending: "~", StatusFailed: "X",
		StatusBlocked: "-", StatusSkipped: " ", StatusCanceled: "c", "": "?"}
	rows := map[string][]string{}
	for _, s := range r.Graph.Steps {
		row := rows[s.Host]
		if row == nil {
			row = make([]string, len(names))
			for i := range row {
				row[i] = " "
			}
			rows[s.Host] = row
		}
		row[col[s.Name()]] = glyph[r.Outcomes[s.ID].Status]
	}
	width := 4
	for h := range rows {
		if len(h) > width {
			width = len(h)
		}
	}
	fmt.Fprintf(w, "\n%-*s  ", width, "host")
	for i := range names {
		fmt.Fprintf(w, "%-2d ", i+1)
	}
	fmt.Fprintln(w)
	for _, h := range r.Graph.Hosts() {
		fmt.Fprintf(w, "%-*s  ", width, h)
		for _, g := range rows[h] {
			fmt.Fprintf(w, "%-2s ", g)
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintln(w)
	for i, n := range names {
		fmt.Fprintf(w, "  %2d %s\n", i+1, n)
	}
	fmt.Fprintf(w, "  . unchanged  + changed  ~ would change  X failed  - blocked by a failure  c cancelled  (blank: not run)\n")
}
