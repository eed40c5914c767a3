package kube

import (
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// ignoredMeta are the metadata fields the API server sets on every write:
// they are not what metalk8s applies, so they never make a diff.
var ignoredMeta = []string{"managedFields", "resourceVersion", "generation", "uid",
	"creationTimestamp", "deletionTimestamp", "selfLink"}

// maxFields is how many changed fields one diff line names.
const maxFields = 4

// maxValue is how long a value may be in a diff line, in bytes.
const maxValue = 48

// describe is one object's diff line: "+ create <ref>" when live is nil,
// "~ update <ref>: a.b x -> y, ..." when they differ, "" when equal.
func describe(ref string, live, would *unstructured.Unstructured) string {
	if live == nil {
		return "+ create " + ref
	}
	changes := Compare(live.Object, would.Object)
	if len(changes) == 0 {
		return ""
	}
	more := ""
	if len(changes) > maxFields {
		more = fmt.Sprintf(" (and %d more)", len(changes)-maxFields)
		changes = changes[:maxFields]
	}
	return "~ update " + ref + ": " + strings.Join(changes, ", ") + more
}

// Compare lists the fields that differ between two objects as
// "path old -> new" (a missing side is "(none)"), sorted by path, leaving
// out status, the metadata the API server maintains and AppliedAnnotation.
func Compare(live, want map[string]any) []string {
	var out []string
	compare("", clean(live), clean(want), &out)
	sort.Strings(out)
	return out
}

// clean copies the top of obj without status and server-set metadata.
func clean(obj map[string]any) map[string]any {
	out := make(map[string]any, len(obj))
	for k, v := range obj {
		if k != "status" {
			out[k] = v
		}
	}
	if md, ok := obj["metadata"].(map[string]any); ok {
		m := make(map[string]any, len(md))
		for k, v := range md {
			m[k] = v
		}
		for _, k := range ignoredMeta {
			delete(m, k)
		}
		if ann, ok := m["annotations"].(map[string]any); ok {
			if _, ours := ann[AppliedAnnotation]; ours {
				a := make(map[string]any, len(ann))
				for k, v := range ann {
					a[k] = v
				}
				delete(a, AppliedAnnotation) // it changes whenever anything else does
				if len(a) == 0 {
					delete(m, "annotations")
				} else {
					m["annotations"] = a
				}
			}
		}
		out["metadata"] = m
	}
	return out
}

func compare(path string, a, b any, out *[]string) {
	am, aMap := a.(map[string]any)
	bm, bMap := b.(map[string]any)
	if aMap && bMap {
		keys := map[string]bool{}
		for k := range am {
			keys[k] = true
		}
		for k := range bm {
			keys[k] = true
		}
		for k := range keys {
			compare(join(path, k), am[k], bm[k], out)
		}
		return
	}
	al, aList := a.([]any)
	bl, bList := b.([]any)
	if aList && bList && len(al) == len(bl) {
		for i := range al {
			compare(fmt.Sprintf("%s[%d]", path, i), al[i], bl[i], out)
		}
		return
	}
	if equal(a, b) {
		return
	}
	*out = append(*out, fmt.Sprintf("%s %s -> %s", path, show(a), show(b)))
}

// equal treats numbers alike whatever their Go type (int64 from the API,
// float64 from JSON).
func equal(a, b any) bool {
	if reflect.DeepEqual(a, b) {
		return true
	}
	fa, okA := number(a)
	fb, okB := number(b)
	return okA && okB && fa == fb
}

func number(v any) (float64, bool) {
	switch n := v.(type) {
	case int64:
		return float64(n), true
	case int:
		return float64(n), true
	case float64:
		return n, true
	case json.Number:
		f, err := n.Float64()
		return f, err == nil
	}
	return 0, false
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func show(v any) string {
	var s string
	switch x := v.(type) {
	case nil:
		return "(none)"
	case string:
		s = x
	default:
		b, err := json.Marshal(x)
		if err != nil {
			b = []byte(fmt.Sprint(x))
		}
		s = string(b)
	}
	if len(s) > maxValue {
		s = s[:maxValue-3] + "..."
	}
	return s
}
