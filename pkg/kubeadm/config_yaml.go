package kubeadm

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"

	"sigs.k8s.io/yaml"
)

// linkedKubeadm is the minor release of the kubeadm types linked in (the
// k8s.io/kubernetes module of go.mod; a test keeps them equal).
const linkedKubeadm = "v1.36"

// sameMinor says whether version ("v1.36.3") is of minor ("v1.36").
func sameMinor(version, minor string) bool {
	return strings.HasPrefix(version+".", minor+".")
}

// marshalAll writes objects (pointers to structs) as one multi-document
// YAML stream, each document after "---", without their unset fields.
func marshalAll(objs ...any) ([]byte, error) {
	var b bytes.Buffer
	for _, o := range objs {
		j, err := json.Marshal(o)
		if err != nil {
			return nil, fmt.Errorf("kubeadm config: %T: %w", o, err)
		}
		var m map[string]any
		if err := json.Unmarshal(j, &m); err != nil {
			return nil, fmt.Errorf("kubeadm config: %T: %w", o, err)
		}
		prune(reflect.ValueOf(o).Elem(), m)
		y, err := yaml.Marshal(m)
		if err != nil {
			return nil, fmt.Errorf("kubeadm config: %T: %w", o, err)
		}
		b.WriteString("---\n")
		b.Write(y)
	}
	return b.Bytes(), nil
}

var marshaler = reflect.TypeOf((*json.Marshaler)(nil)).Elem()

// prune deletes from m, the JSON form of struct v, the fields v leaves at
// their zero value that are not pointers, slices or maps: decoding gives
// them back as the same zero value, which the component's defaulting
// treats as unset, so the file says only what was set. Nil pointers,
// slices and maps (null) go too; a pointer to a zero value, or an empty
// non-nil slice ("taints: []"), stays. Structs without fields left go.
func prune(v reflect.Value, m map[string]any) {
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		f, fv := t.Field(i), v.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		if name == "" && f.Anonymous && fv.Kind() == reflect.Struct {
			prune(fv, m) // inline
			continue
		}
		if name == "" {
			name = f.Name
		}
		if _, ok := m[name]; !ok {
			continue
		}
		switch fv.Kind() {
		case reflect.Pointer, reflect.Slice, reflect.Map, reflect.Interface:
			if fv.IsNil() {
				delete(m, name)
			}
		case reflect.Struct:
			sub, isMap := m[name].(map[string]any)
			if f.Type.Implements(marshaler) || !isMap {
				if fv.IsZero() {
					delete(m, name)
				}
				continue
			}
			prune(fv, sub)
			if len(sub) == 0 {
				delete(m, name)
			}
		default:
			if fv.IsZero() {
				delete(m, name)
			}
		}
	}
}
