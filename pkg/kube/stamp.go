package kube

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// AppliedAnnotation holds a hash of the object metalk8s last applied (its
// role is that of kubectl's last-applied-configuration, in 16 hex digits).
const AppliedAnnotation = "metalk8s.io/applied"

// stamp returns a copy of obj annotated with the hash of obj as given
// (its JSON, keys sorted), and that hash.
func stamp(obj *unstructured.Unstructured) (*unstructured.Unstructured, string, error) {
	b, err := json.Marshal(obj.Object)
	if err != nil {
		return nil, "", fmt.Errorf("hashing: %w", err)
	}
	h := sha256.Sum256(b)
	sum := hex.EncodeToString(h[:8])
	out := obj.DeepCopy()
	ann := out.GetAnnotations()
	if ann == nil {
		ann = map[string]string{}
	}
	ann[AppliedAnnotation] = sum
	out.SetAnnotations(ann)
	return out, sum, nil
}

// contains reports whether every field of want is in have with the same
// value (maps may hold more keys; lists must match element by element).
func contains(have, want any) bool {
	switch w := want.(type) {
	case map[string]any:
		h, ok := have.(map[string]any)
		if !ok {
			return len(w) == 0 && have == nil
		}
		for k, v := range w {
			if !contains(h[k], v) {
				return false
			}
		}
		return true
	case []any:
		h, ok := have.([]any)
		if !ok || len(h) != len(w) {
			return false
		}
		for i := range w {
			if !contains(h[i], w[i]) {
				return false
			}
		}
		return true
	}
	return equal(have, want)
}
