package inventory

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/metalk8s/metalk8s/internal/testpeer"
)

// The corpus under test/inventory is read by the real ansible-inventory and
// by us; the documents must be equal, list order inside groups aside.

const corpusDir = "../../test/inventory"

func ansibleInventory(t *testing.T, path string) ([]byte, error) {
	t.Helper()
	bin := testpeer.Binary(t, "ansible-inventory", "ansible-core")
	abs, _ := filepath.Abs(path)
	cmd := exec.Command(bin, "-i", abs, "--list")
	cmd.Dir = t.TempDir() // ansible also reads group_vars/ from the working directory
	cmd.Env = append(os.Environ(),
		"ANSIBLE_INVENTORY_ENABLED=ini",
		"ANSIBLE_INVENTORY_UNPARSED_FAILED=true",
		"ANSIBLE_INVENTORY_ANY_UNPARSED_IS_FAILED=true",
		"ANSIBLE_NOCOLOR=1",
		"ANSIBLE_LOCAL_TEMP="+t.TempDir(),
		"HOME="+t.TempDir(),
	)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, errors.New(stderr.String())
	}
	return out, nil
}

func decodeDoc(t *testing.T, data []byte) map[string]any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var doc map[string]any
	if err := dec.Decode(&doc); err != nil {
		t.Fatalf("decode JSON: %v\n%s", err, data)
	}
	// Lists of hosts and children are compared as sets.
	for name, g := range doc {
		if name == "_meta" {
			continue
		}
		gm, _ := g.(map[string]any)
		for _, key := range []string{"hosts", "children"} {
			if list, ok := gm[key].([]any); ok {
				sort.Slice(list, func(i, j int) bool { return list[i].(string) < list[j].(string) })
			}
		}
	}
	return doc
}

func caseDirs(t *testing.T, kind string) []string {
	dirs, err := filepath.Glob(filepath.Join(corpusDir, kind, "*", "hosts.ini"))
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no corpus under %s/%s", corpusDir, kind)
	}
	return dirs
}

func TestListMatchesAnsible(t *testing.T) {
	for _, path := range caseDirs(t, "corpus") {
		name := filepath.Base(filepath.Dir(path))
		t.Run(name, func(t *testing.T) {
			want, err := ansibleInventory(t, path)
			if err != nil {
				t.Fatalf("ansible-inventory rejects a corpus file: %v", err)
			}
			inv, err := Load(path)
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			got := MarshalPython(inv.List())
			w, g := decodeDoc(t, want), decodeDoc(t, got)
			if !reflect.DeepEqual(w, g) {
				diffDocs(t, w, g)
			}
		})
	}
}

func diffDocs(t *testing.T, want, got map[string]any) {
	t.Helper()
	keys := map[string]bool{}
	for k := range want {
		keys[k] = true
	}
	for k := range got {
		keys[k] = true
	}
	for k := range keys {
		if k == "_meta" {
			continue
		}
		if !reflect.DeepEqual(want[k], got[k]) {
			t.Errorf("group %s: ansible %v, metalk8s %v", k, want[k], got[k])
		}
	}
	wh := want["_meta"].(map[string]any)["hostvars"].(map[string]any)
	gh := got["_meta"].(map[string]any)["hostvars"].(map[string]any)
	hosts := map[string]bool{}
	for h := range wh {
		hosts[h] = true
	}
	for h := range gh {
		hosts[h] = true
	}
	for h := range hosts {
		wv, _ := wh[h].(map[string]any)
		gv, _ := gh[h].(map[string]any)
		vars := map[string]bool{}
		for k := range wv {
			vars[k] = true
		}
		for k := range gv {
			vars[k] = true
		}
		for k := range vars {
			if !reflect.DeepEqual(wv[k], gv[k]) {
				t.Errorf("host %s var %s: ansible %#v, metalk8s %#v", h, k, wv[k], gv[k])
			}
		}
	}
}

// expectLines are a case's expect file's non-empty lines: substrings of
// our error or warning.
func expectLines(t *testing.T, dir string) []string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "expect"))
	if err != nil {
		t.Fatalf("missing expect file: %v", err)
	}
	var out []string
	for _, l := range strings.Split(string(data), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

// Inputs accepted with a warning (an even etcd group): no error, and a
// warning holding the expect file's lines.
func TestWarnInventories(t *testing.T) {
	for _, path := range caseDirs(t, "warn") {
		dir := filepath.Dir(path)
		t.Run(filepath.Base(dir), func(t *testing.T) {
			inv, err := Load(path)
			if err != nil {
				t.Fatal(err)
			}
			cl, err := NewCluster(inv)
			if err != nil {
				t.Fatal(err)
			}
			warnings := strings.Join(cl.Warnings, "\n")
			for _, want := range expectLines(t, dir) {
				if !strings.Contains(warnings, want) {
					t.Errorf("warnings %q do not contain %q", warnings, want)
				}
			}
		})
	}
}

// Bad inputs: our error must name the place (the expect file's lines), and
// where ansible rejects the input too, it must fail there as well.
func TestBadInventories(t *testing.T) {
	for _, path := range caseDirs(t, "bad") {
		dir := filepath.Dir(path)
		t.Run(filepath.Base(dir), func(t *testing.T) {
			inv, err := Load(path)
			if err == nil {
				_, err = NewCluster(inv)
			}
			if err == nil {
				t.Fatalf("accepted a bad inventory")
			}
			var ie *Error
			if !errors.As(err, &ie) {
				t.Errorf("error is %T, want *inventory.Error: %v", err, err)
			}
			for _, want := range expectLines(t, dir) {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not contain %q", err, want)
				}
			}
			verdict, _ := os.ReadFile(filepath.Join(dir, "ansible"))
			if strings.HasPrefix(strings.TrimSpace(string(verdict)), "rejects") {
				if _, aerr := ansibleInventory(t, path); aerr == nil {
					t.Errorf("ansible-inventory accepts it, but the case says ansible rejects it")
				}
			}
		})
	}
}
