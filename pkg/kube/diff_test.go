package kube

import (
	"reflect"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func TestCompare(t *testing.T) {
	base := func() map[string]any {
		return map[string]any{
			"apiVersion": "v1", "kind": "ConfigMap",
			"metadata": map[string]any{"name": "x", "namespace": "default", "labels": map[string]any{"a": "1"},
				"resourceVersion": "12", "uid": "u", "generation": int64(3), "creationTimestamp": "2026-01-01T00:00:00Z",
				"managedFields": []any{map[string]any{"manager": "metalk8s"}}},
			"data":   map[string]any{"k": "v"},
			"status": map[string]any{"phase": "Available"},
		}
	}
	tests := []struct {
		name   string
		change func(m map[string]any)
		want   []string
	}{
		{"equal", func(map[string]any) {}, nil},
		{"server-set metadata and status ignored", func(m map[string]any) {
			md := m["metadata"].(map[string]any)
			md["resourceVersion"], md["uid"], md["generation"] = "13", "v", int64(4)
			md["managedFields"] = []any{}
			md["creationTimestamp"] = "2027-01-01T00:00:00Z"
			m["status"] = map[string]any{"phase": "Bound"}
		}, nil},
		{"changed value", func(m map[string]any) { m["data"].(map[string]any)["k"] = "w" }, []string{"data.k v -> w"}},
		{"added and removed", func(m map[string]any) {
			md := m["metadata"].(map[string]any)
			md["labels"] = map[string]any{"b": "2"}
		}, []string{"metadata.labels.a 1 -> (none)", "metadata.labels.b (none) -> 2"}},
		{"list element", func(m map[string]any) { m["spec"] = map[string]any{"l": []any{"x"}} },
			[]string{`spec (none) -> {"l":["x"]}`}},
		{"numbers alike", func(m map[string]any) { m["n"] = float64(2) }, []string{"n (none) -> 2"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			want := base()
			tc.change(want)
			got := Compare(base(), want)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Compare = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestCompareNumbers(t *testing.T) {
	a := map[string]any{"n": int64(2), "l": []any{int64(1), "a"}}
	b := map[string]any{"n": float64(2), "l": []any{float64(1), "b"}}
	if got, want := Compare(a, b), []string{"l[1] a -> b"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Compare = %q, want %q", got, want)
	}
}

func TestDescribe(t *testing.T) {
	obj := func(data map[string]any) *unstructured.Unstructured {
		return &unstructured.Unstructured{Object: map[string]any{"kind": "ConfigMap", "metadata": map[string]any{"name": "x"}, "data": data}}
	}
	long := strings.Repeat("z", 100)
	many := map[string]any{"a": "2", "b": "2", "c": "2", "d": "2", "e": "2", "f": "2"}
	tests := []struct {
		name       string
		live, want *unstructured.Unstructured
		line       string
	}{
		{"create", nil, obj(nil), "+ create ConfigMap x"},
		{"equal", obj(map[string]any{"a": "1"}), obj(map[string]any{"a": "1"}), ""},
		{"update", obj(map[string]any{"a": "1"}), obj(map[string]any{"a": "2"}), "~ update ConfigMap x: data.a 1 -> 2"},
		{"long value cut", obj(nil), obj(map[string]any{"a": long}),
			"~ update ConfigMap x: data.a (none) -> " + strings.Repeat("z", maxValue-3) + "..."},
		{"many fields", obj(map[string]any{}), obj(many),
			"~ update ConfigMap x: data.a (none) -> 2, data.b (none) -> 2, data.c (none) -> 2, data.d (none) -> 2 (and 2 more)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := describe("ConfigMap x", tc.live, tc.want); got != tc.line {
				t.Errorf("describe =\n %q, want\n %q", got, tc.line)
			}
		})
	}
}

func TestContains(t *testing.T) {
	have := map[string]any{"a": "1", "n": int64(2), "l": []any{map[string]any{"x": "1", "y": "2"}}, "extra": "e"}
	tests := []struct {
		name string
		want map[string]any
		ok   bool
	}{
		{"subset", map[string]any{"a": "1", "l": []any{map[string]any{"x": "1"}}}, true},
		{"numbers alike", map[string]any{"n": float64(2)}, true},
		{"empty map for a missing one", map[string]any{"m": map[string]any{}}, true},
		{"other value", map[string]any{"a": "2"}, false},
		{"missing key", map[string]any{"b": "1"}, false},
		{"longer list", map[string]any{"l": []any{map[string]any{}, map[string]any{}}}, false},
		{"list element differs", map[string]any{"l": []any{map[string]any{"x": "2"}}}, false},
	}
	for _, tc := range tests {
		if got := contains(have, tc.want); got != tc.ok {
			t.Errorf("%s: contains = %v, want %v", tc.name, got, tc.ok)
		}
	}
}

func TestStamp(t *testing.T) {
	a := configMap("x", "1")
	b := configMap("x", "2")
	sa, suma, err := stamp(a)
	if err != nil {
		t.Fatal(err)
	}
	_, sumb, _ := stamp(b)
	_, again, _ := stamp(configMap("x", "1"))
	if suma == sumb || suma != again || len(suma) != 16 {
		t.Errorf("hashes %s %s %s: want equal for equal objects, different otherwise, 16 digits", suma, again, sumb)
	}
	if a.GetAnnotations() != nil || sa.GetAnnotations()[AppliedAnnotation] != suma {
		t.Errorf("stamp changed its input or did not annotate the copy: %v %v", a.GetAnnotations(), sa.GetAnnotations())
	}
	// The annotation alone never makes a diff line.
	if got := Compare(a.Object, sa.Object); got != nil {
		t.Errorf("Compare with only %s added: %q", AppliedAnnotation, got)
	}
}
