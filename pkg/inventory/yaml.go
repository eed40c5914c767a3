package inventory

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Vars files are read as Ansible's loader reads them: as JSON when the
// whole file is JSON, otherwise as YAML 1.1 (PyYAML's typing: yes/no/on/off
// are booleans, 0777 is octal, 1e3 is a string).

func decodeVarsFile(data []byte) (any, error) {
	if v, ok := decodeJSON(data); ok {
		return v, nil
	}
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		if err.Error() == "EOF" {
			return nil, nil
		}
		return nil, err
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return nil, fmt.Errorf("line %d: expected a single document in the stream", extra.Line)
	}
	return yamlValue(&doc)
}

func decodeJSON(data []byte) (any, bool) {
	if !json.Valid(data) {
		return nil, false
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, false
	}
	return fromJSON(v), true
}

func fromJSON(v any) any {
	switch v := v.(type) {
	case json.Number:
		s := v.String()
		if !strings.ContainsAny(s, ".eE") {
			if n, ok := new(big.Int).SetString(s, 10); ok {
				return bigOrInt(n)
			}
		}
		f, _ := strconv.ParseFloat(s, 64)
		return f
	case []any:
		for i := range v {
			v[i] = fromJSON(v[i])
		}
	case map[string]any:
		for k := range v {
			v[k] = fromJSON(v[k])
		}
	}
	return v
}

func yamlValue(n *yaml.Node) (any, error) {
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) == 0 {
			return nil, nil
		}
		return yamlValue(n.Content[0])
	case yaml.AliasNode:
		return yamlValue(n.Alias)
	case yaml.SequenceNode, yaml.MappingNode:
		v, err := yamlCollection(n)
		if err != nil || n.Style&yaml.TaggedStyle == 0 {
			return v, err
		}
		switch n.ShortTag() {
		case "!unsafe":
			return wrapUnsafe(v), nil
		case "!!omap", "!!pairs":
			return pairs(n, v)
		case "!!seq", "!!map", "!!set":
			return v, nil
		}
		return nil, unknownTag(n)
	case yaml.ScalarNode:
		return yamlScalar(n)
	}
	return nil, fmt.Errorf("line %d: unsupported YAML node", n.Line)
}

// pairs turns [{a: 1}, {b: 2}] into [[a, 1], [b, 2]], as PyYAML does.
func pairs(n *yaml.Node, v any) (any, error) {
	list, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("line %d: %s needs a list of one-key mappings", n.Line, n.ShortTag())
	}
	out := make([]any, 0, len(list))
	for _, it := range list {
		m, ok := it.(map[string]any)
		if !ok || len(m) != 1 {
			return nil, fmt.Errorf("line %d: %s needs a list of one-key mappings", n.Line, n.ShortTag())
		}
		for k, x := range m {
			out = append(out, []any{k, x})
		}
	}
	return out, nil
}

func unknownTag(n *yaml.Node) error {
	tag := n.ShortTag()
	if strings.HasPrefix(tag, "!!") {
		tag = "tag:yaml.org,2002:" + tag[2:]
	}
	return fmt.Errorf("line %d: could not determine a constructor for the tag '%s'", n.Line, tag)
}

// Unsafe is a string Ansible must not template (YAML's !unsafe tag).
// ansible-inventory prints it as {"__ansible_unsafe": "..."}.
type Unsafe string

func wrapUnsafe(v any) any {
	switch v := v.(type) {
	case string:
		return Unsafe(v)
	case []any:
		for i := range v {
			v[i] = wrapUnsafe(v[i])
		}
	case map[string]any:
		for k := range v {
			v[k] = wrapUnsafe(v[k])
		}
	}
	return v
}

func yamlCollection(n *yaml.Node) (any, error) {
	switch n.Kind {
	case yaml.SequenceNode:
		out := []any{}
		for _, c := range n.Content {
			v, err := yamlValue(c)
			if err != nil {
				return nil, err
			}
			if t, ok := v.(timestamp); ok {
				v = string(t)
			}
			out = append(out, v)
		}
		return out, nil
	}
	return yamlMapping(n)
}

func yamlMapping(n *yaml.Node) (map[string]any, error) {
	var d pyDict
	var merges []*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		kn, vn := n.Content[i], n.Content[i+1]
		if kn.Kind == yaml.ScalarNode && kn.Value == "<<" && kn.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle) == 0 {
			merges = append(merges, vn)
			continue
		}
		kv, err := yamlValue(kn)
		if err != nil {
			return nil, err
		}
		v, err := yamlValue(vn)
		if err != nil {
			return nil, err
		}
		if t, ok := kv.(timestamp); ok {
			return nil, fmt.Errorf("line %d: the date %s as a mapping key has no JSON form; quote it", kn.Line, string(t))
		}
		if t, ok := v.(timestamp); ok {
			v = string(t)
		}
		if !d.set(kv, v) {
			return nil, fmt.Errorf("line %d: unsupported mapping key", kn.Line)
		}
	}
	out := d.toMap()
	// Merged keys never override the mapping's own keys; among merged
	// mappings, the first one listed wins.
	for _, m := range merges {
		if m.Kind == yaml.AliasNode {
			m = m.Alias
		}
		srcs := []*yaml.Node{m}
		if m.Kind == yaml.SequenceNode {
			srcs = m.Content
		}
		for _, s := range srcs {
			v, err := yamlValue(s)
			if err != nil {
				return nil, err
			}
			mm, ok := v.(map[string]any)
			if !ok {
				return nil, fmt.Errorf("line %d: expected a mapping for merging", s.Line)
			}
			for k, x := range mm {
				if _, have := out[k]; !have {
					out[k] = x
				}
			}
		}
	}
	return out, nil
}

var (
	yBool      = regexp.MustCompile(`^(?:yes|Yes|YES|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF)$`)
	yInt       = regexp.MustCompile(`^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+|[-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+)$`)
	yFlt       = regexp.MustCompile(`^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?|\.[0-9_]+(?:[eE][-+][0-9]+)?|[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$`)
	yNull      = regexp.MustCompile(`^(?:~|null|Null|NULL|)$`)
	yTime      = regexp.MustCompile(`^(?:[0-9]{4}-[0-9]{2}-[0-9]{2}|[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}(?:[Tt]|[ \t]+)[0-9]{1,2}:.*)$`)
	yTimeParts = regexp.MustCompile(`^([0-9]{4})-([0-9]{1,2})-([0-9]{1,2})(?:(?:[Tt]|[ \t]+)([0-9]{1,2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]*))?(?:[ \t]*(Z|([-+])([0-9]{1,2})(?::([0-9]{2}))?))?)?$`)
)

func yamlScalar(n *yaml.Node) (any, error) {
	tag := ""
	if n.Style&yaml.TaggedStyle != 0 {
		tag = n.ShortTag()
	}
	quoted := n.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle|yaml.LiteralStyle|yaml.FoldedStyle) != 0
	s := n.Value
	switch tag {
	case "!!str":
		return s, nil
	case "!unsafe":
		return Unsafe(s), nil
	case "!vault":
		return nil, fmt.Errorf("line %d: vault-encrypted values are not supported", n.Line)
	case "!!int":
		return yamlInt(s), nil
	case "!!float":
		return yamlFloat(s), nil
	case "!!bool":
		return yamlBool(s), nil
	case "!!null":
		return nil, nil
	case "!!binary":
		return nil, fmt.Errorf("line %d: !!binary values are bytes, which have no JSON form", n.Line)
	case "!!timestamp":
		return yamlTime(s), nil
	case "":
	default:
		return nil, unknownTag(n)
	}
	if quoted {
		return s, nil
	}
	if s == "=" { // YAML 1.1's value tag, which the safe loader refuses
		return nil, fmt.Errorf("line %d: could not determine a constructor for the tag 'tag:yaml.org,2002:value'", n.Line)
	}
	switch {
	case yBool.MatchString(s):
		return yamlBool(s), nil
	case yInt.MatchString(s):
		return yamlInt(s), nil
	case yFlt.MatchString(s):
		f := yamlFloat(s)
		if math.IsInf(f, 0) || math.IsNaN(f) {
			return nil, fmt.Errorf("line %d: %s (infinity or NaN) has no JSON form", n.Line, s)
		}
		return f, nil
	case yNull.MatchString(s):
		return nil, nil
	case yTime.MatchString(s):
		return timestamp(yamlTime(s)), nil
	}
	return s, nil
}

// timestamp is a YAML date: a string in JSON, but no mapping key.
type timestamp string

func yamlBool(s string) bool {
	switch strings.ToLower(s) {
	case "yes", "true", "on":
		return true
	}
	return false
}

func yamlInt(s string) any {
	v := strings.ReplaceAll(s, "_", "")
	sign := int64(1)
	if v != "" && (v[0] == '-' || v[0] == '+') {
		if v[0] == '-' {
			sign = -1
		}
		v = v[1:]
	}
	n := new(big.Int)
	switch {
	case v == "0":
		return int64(0)
	case strings.HasPrefix(v, "0b"):
		n.SetString(v[2:], 2)
	case strings.HasPrefix(v, "0x"):
		n.SetString(v[2:], 16)
	case strings.HasPrefix(v, "0"):
		n.SetString(v[1:], 8)
	case strings.Contains(v, ":"):
		for _, part := range strings.Split(v, ":") {
			d, _ := strconv.ParseInt(part, 10, 64)
			n.Mul(n, big.NewInt(60))
			n.Add(n, big.NewInt(d))
		}
	default:
		n.SetString(v, 10)
	}
	return bigOrInt(n.Mul(n, big.NewInt(sign)))
}

func yamlFloat(s string) float64 {
	v := strings.ToLower(strings.ReplaceAll(s, "_", ""))
	sign := 1.0
	if v != "" && (v[0] == '-' || v[0] == '+') {
		if v[0] == '-' {
			sign = -1
		}
		v = v[1:]
	}
	switch {
	case v == ".inf":
		return sign * math.Inf(1)
	case v == ".nan":
		return math.NaN()
	case strings.Contains(v, ":"):
		f := 0.0
		for _, part := range strings.Split(v, ":") {
			d, _ := strconv.ParseFloat(part, 64)
			f = f*60 + d
		}
		return sign * f
	}
	f, _ := strconv.ParseFloat(v, 64)
	return sign * f
}

// yamlTime renders a YAML timestamp as Python's isoformat() does, which is
// how Ansible prints a date or datetime in JSON.
func yamlTime(s string) string {
	m := yTimeParts.FindStringSubmatch(s)
	if m == nil {
		return s
	}
	atoi := func(x string) int { n, _ := strconv.Atoi(x); return n }
	date := fmt.Sprintf("%04d-%02d-%02d", atoi(m[1]), atoi(m[2]), atoi(m[3]))
	if m[4] == "" {
		return date
	}
	out := fmt.Sprintf("%sT%02d:%02d:%02d", date, atoi(m[4]), atoi(m[5]), atoi(m[6]))
	if frac := m[7]; frac != "" {
		if len(frac) > 6 {
			frac = frac[:6]
		}
		frac += strings.Repeat("0", 6-len(frac))
		if atoi(frac) != 0 {
			out += "." + frac
		}
	}
	switch {
	case m[9] != "":
		out += fmt.Sprintf("%s%02d:%02d", m[9], atoi(m[10]), atoi(m[11]))
	case m[8] == "Z":
		out += "+00:00"
	}
	return out
}
