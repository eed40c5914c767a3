package inventory

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
)

// Load reads an INI hosts file, then the group_vars/ and host_vars/
// beside it, and merges every host's variables with Ansible's precedence.
func Load(path string) (*Inventory, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, &Error{File: path, Msg: fmt.Sprintf("cannot read inventory: %v", unwrapPathErr(err))}
	}
	inv := newInventory(path)
	if err := inv.parseINI(path, data); err != nil {
		return nil, err
	}
	if err := inv.reconcile(); err != nil {
		return nil, err
	}
	dir := filepath.Dir(path)
	if real, err := filepath.EvalSymlinks(dir); err == nil {
		dir = real
	}
	vf := &varsFiles{dir: dir, cache: map[string]map[string]any{}}
	for _, name := range inv.hostOrder {
		if err := inv.mergeHostVars(inv.Hosts[name], vf); err != nil {
			return nil, err
		}
	}
	return inv, nil
}

func unwrapPathErr(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// mergeHostVars applies Ansible's default VARIABLE_PRECEDENCE: INI vars of
// "all", INI vars of the host's groups, group_vars/all, group_vars of the
// groups, INI host vars, host_vars.
func (inv *Inventory) mergeHostVars(h *Host, vf *varsFiles) error {
	h.Vars, h.Source = map[string]any{}, map[string]string{}
	set := func(vars map[string]any, src func(k string) string) {
		for k, v := range vars {
			h.Vars[k] = v
			h.Source[k] = src(k)
		}
	}
	all := inv.Groups["all"]
	groups := inv.HostGroups(h)
	iniSrc := func(g *Group) func(string) string {
		return func(string) string { return fmt.Sprintf("%s [%s:vars]", inv.Path, g.Name) }
	}
	set(all.Vars, iniSrc(all))
	for _, g := range groups {
		set(g.Vars, iniSrc(g))
	}
	for _, g := range append([]*Group{all}, groups...) {
		vars, src, err := vf.load("group_vars", g.Name)
		if err != nil {
			return err
		}
		set(vars, src)
	}
	set(h.inline, func(k string) string { return h.inlineAt[k] })
	vars, src, err := vf.load("host_vars", h.Name)
	if err != nil {
		return err
	}
	set(vars, src)
	return nil
}

// varsFiles finds and reads group_vars/NAME and host_vars/NAME the way
// Ansible's host_group_vars plugin does.
type varsFiles struct {
	dir    string
	cache  map[string]map[string]any
	source map[string]map[string]string
}

var extensions = []string{"", ".yml", ".yaml", ".json"}

// A name may hold '/' (Ansible joins it as a path) but may not climb out.
var reUnsafeName = regexp.MustCompile(`^/|(^|/)\.\.?(/|$)`)

func (vf *varsFiles) load(kind, name string) (map[string]any, func(string) string, error) {
	key := kind + "/" + name
	if vf.source == nil {
		vf.source = map[string]map[string]string{}
	}
	if vars, ok := vf.cache[key]; ok {
		return vars, func(k string) string { return vf.source[key][k] }, nil
	}
	vars, srcs := map[string]any{}, map[string]string{}
	if !reUnsafeName.MatchString(name) {
		files, err := findVarsFiles(filepath.Join(vf.dir, kind), name)
		if err != nil {
			return nil, nil, err
		}
		for _, f := range files {
			data, err := os.ReadFile(f)
			if err != nil {
				return nil, nil, &Error{File: f, Msg: fmt.Sprintf("cannot read vars file: %v", unwrapPathErr(err))}
			}
			v, err := decodeVarsFile(data)
			if err != nil {
				return nil, nil, varsFileError(f, err)
			}
			if isEmpty(v) {
				continue
			}
			m, ok := v.(map[string]any)
			if !ok {
				return nil, nil, &Error{File: f, Msg: fmt.Sprintf("vars file must hold a mapping (a dictionary), found %s", typeName(v))}
			}
			for k, x := range m {
				vars[k] = x
				srcs[k] = f
			}
		}
	}
	vf.cache[key], vf.source[key] = vars, srcs
	return vars, func(k string) string { return srcs[k] }, nil
}

var reYAMLLine = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)

func varsFileError(file string, err error) error {
	msg := err.Error()
	if m := reYAMLLine.FindStringSubmatch(msg); m != nil {
		line := 0
		fmt.Sscan(m[1], &line)
		return &Error{File: file, Line: line, Msg: "invalid YAML: " + m[2]}
	}
	return &Error{File: file, Msg: "invalid YAML: " + strings.TrimPrefix(msg, "yaml: ")}
}

// findVarsFiles returns the first of NAME, NAME.yml, NAME.yaml, NAME.json
// that exists; a directory gives all its vars files, sorted, recursively.
func findVarsFiles(dir, name string) ([]string, error) {
	base := filepath.Join(dir, name)
	for _, ext := range extensions {
		p := base + ext
		st, err := os.Stat(p)
		if err != nil {
			continue
		}
		if st.IsDir() {
			return dirVarsFiles(p)
		}
		return []string{p}, nil
	}
	return nil, nil
}

func dirVarsFiles(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, &Error{File: dir, Msg: fmt.Sprintf("cannot read vars directory: %v", unwrapPathErr(err))}
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	var out []string
	for _, n := range names {
		if strings.HasPrefix(n, ".") || strings.HasSuffix(n, "~") {
			continue
		}
		p := filepath.Join(dir, n)
		st, err := os.Stat(p)
		if err != nil {
			continue
		}
		ext := filepath.Ext(n)
		switch {
		case st.IsDir() && ext == "":
			more, err := dirVarsFiles(p)
			if err != nil {
				return nil, err
			}
			out = append(out, more...)
		case st.Mode().IsRegular() && (ext == "" || ext == ".yml" || ext == ".yaml" || ext == ".json"):
			out = append(out, p)
		}
	}
	return out, nil
}

// isEmpty is Python's falsiness for what a vars file can hold.
func isEmpty(v any) bool {
	switch v := v.(type) {
	case nil:
		return true
	case map[string]any:
		return len(v) == 0
	case []any:
		return len(v) == 0
	case string:
		return v == ""
	case Unsafe:
		return v == ""
	case bool:
		return !v
	case int64:
		return v == 0
	case float64:
		return v == 0
	}
	return false
}

func typeName(v any) string {
	switch v.(type) {
	case []any:
		return "a list"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case nil:
		return "nothing"
	case map[string]any:
		return "a mapping"
	}
	return "a number"
}
