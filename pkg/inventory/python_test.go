package inventory

import (
	"bytes"
	"encoding/json"
	"os/exec"
	"reflect"
	"strings"
	"testing"

	"github.com/metalk8s/metalk8s/internal/testpeer"
)

// Values are typed by Python's ast.literal_eval (INI) and PyYAML (vars
// files); these tests ask the real Python for the answer.

func python(t *testing.T, script string, inputs []string) [][]byte {
	t.Helper()
	bin, err := exec.LookPath("/usr/bin/python3") // the Python Ansible runs on
	if err != nil {
		testpeer.Missing(t, "/usr/bin/python3", "apt-get install python3")
	}
	in, _ := json.Marshal(inputs)
	cmd := exec.Command(bin, "-c", script)
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("python3: %v\n%s", err, stderr.String())
	}
	lines := bytes.Split(bytes.TrimRight(out, "\n"), []byte("\n"))
	if len(lines) != len(inputs) {
		t.Fatalf("python3 answered %d lines for %d inputs", len(lines), len(inputs))
	}
	return lines
}

func sameJSON(t *testing.T, a, b []byte) bool {
	t.Helper()
	dec := func(x []byte) any {
		d := json.NewDecoder(bytes.NewReader(x))
		d.UseNumber()
		var v any
		if err := d.Decode(&v); err != nil {
			t.Fatalf("decode %s: %v", x, err)
		}
		return v
	}
	return reflect.DeepEqual(dec(a), dec(b))
}

const literalScript = `
import ast, json, sys
for s in json.load(sys.stdin):
    try:
        v = ast.literal_eval(s)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        v = s
    if isinstance(v, bytes):
        v = v.decode('utf-8', 'surrogateescape')
    try:
        print(json.dumps(v, sort_keys=True, default=list, ensure_ascii=False))
    except TypeError:  # mixed key types, as Ansible falls back
        print(json.dumps(v, default=list, ensure_ascii=False))
`

func TestParseValueMatchesPython(t *testing.T) {
	inputs := []string{
		"1", "-1", "+7", "0", "00", "007", "0_0", "1_000", "1__0", "_1", "1_",
		"0x1F", "0X1f", "0o17", "0b101", "0x", "0x_1", "-0x10",
		"123456789012345678901234567890", "-9223372036854775808", "9223372036854775808",
		"1.5", "1.", ".5", "1e3", "1E-3", "1.5e+10", "01.5", "1_0.5", "1e1_0", "1.2.3",
		"1e16", "1e15", "0.0001", "0.00001", "123456789.123456789", "-0.0", "3.14159265358979",
		"True", "False", "None", "true", "yes", "null", "-True", "TrueFalse",
		"'a'", `"b"`, `'it''s'`, `'a' "b"`, `'a\nb'`, `r'a\nb'`, `'\x41\u00e9\U0001F600'`, `'\101'`,
		`'\d'`, `b'bytes'`, `u'text'`, `f'x'`, `'''tri'ple'''`, `'unterminated`, `'\N{DASH}'`, `'é'`,
		"[]", "[1, 2]", "[1, 'a', [2]]", "[1,]", "[,]", "[1 2]", "()", "(1)", "(1,)", "(1, 2)",
		"1, 2", "1,", "{}", "{'a': 1}", "{'a': {'b': [1, 2]}}", "{1: 'x', True: 'y', None: 'z'}",
		"{'a': 1,}", "{'a': 1, 'a': 2}", "{**a}", "set([1])", "[{1}, x]", "{{ name }}",
		"1 + 2", "1 - 2", "-(1)", "-((2.5))", "-(1,)", "(-1)", "[-(1)]", "--1", "not 1", "a", "hello world", "a=b",
		"1 # comment", "hello # comment", "'x' # c", "#only", "", "   ", " 1", "1 ", "\t2",
		"/dev/vdb", "10.0.0.1", "52G", "-o ProxyJump=bastion", "{{ var }}", "[1, 2", "{'a':}",
		"1if 1 else 2", "[x for x in y]", "lambda: 1", "__import__('os')", "0777", "08", "1e", "1e+",
		"inf", "nan", "'\\''", `"a\"b"`,
	}
	want := python(t, literalScript, inputs)
	for i, in := range inputs {
		v, err := parseValue(in)
		if err != nil {
			t.Errorf("parseValue(%q): %v", in, err)
			continue
		}
		got := MarshalPython(v)
		if !sameJSON(t, want[i], got) {
			t.Errorf("parseValue(%q) = %s, python %s", in, bytes.TrimSpace(got), want[i])
		}
	}
}

const yamlScript = `
import json, sys, yaml, datetime
def conv(o):
    if isinstance(o, (datetime.date, datetime.datetime)):
        return o.isoformat()
    return str(o)
for s in json.load(sys.stdin):
    try:
        v = json.loads(s)
    except Exception:
        v = yaml.safe_load(s)
    try:
        print(json.dumps(v, sort_keys=True, default=conv, ensure_ascii=False))
    except TypeError:
        print(json.dumps(v, default=conv, ensure_ascii=False))
`

func TestVarsFileTypingMatchesPyYAML(t *testing.T) {
	testpeer.Python3YAML(t)
	scalars := []string{
		"yes", "no", "on", "off", "y", "n", "true", "True", "TRUE", "tRue", "~", "null", "Null", "",
		"1", "-1", "+1", "0", "0777", "0o17", "0x1F", "0b101", "1_000", "190:20:30", "-1:30",
		"1.5", "1.0e+3", "1e3", "1.0e3", ".5", "1_0.5", "190:20:30.15", "1.",
		"2001-12-14", "2001-12-14t21:59:43.10-05:00", "2001-12-14 21:59:43.10", "2001-12-14T21:59:43Z",
		"'quoted'", "\"42\"", "abc", "52G", "/dev/vdb",
	}
	var inputs []string
	for _, s := range scalars {
		inputs = append(inputs, "v: "+s+"\n")
	}
	inputs = append(inputs,
		"a: &x {b: 1, c: 2}\nd:\n  <<: *x\n  c: 3\n",
		"a: &x {b: 1}\nb: &y {b: 2, e: 5}\nd:\n  <<: [*x, *y]\n",
		"1: one\nyes: two\n~: three\n",
		"l: [1, yes, '2', 2.5, null]\n",
		"s: |\n  line1\n  line2\n",
		"f: >\n  folded\n  text\n",
		"t: !!str 123\nu: !!int '7'\n",
		`{"a": 1e3, "b": 1, "c": [true, null]}`,
		"dup: 1\ndup: 2\n",
	)
	want := python(t, yamlScript, inputs)
	for i, in := range inputs {
		v, err := decodeVarsFile([]byte(in))
		if err != nil {
			t.Errorf("decodeVarsFile(%q): %v", in, err)
			continue
		}
		got := MarshalPython(v)
		if !sameJSON(t, want[i], got) {
			t.Errorf("decodeVarsFile(%q) = %s, PyYAML %s", in, bytes.TrimSpace(got), want[i])
		}
	}
}

// Literals Python accepts but JSON cannot hold, and those Python itself
// fails on (TypeError), are errors, not text.
func TestValuesWithoutJSON(t *testing.T) {
	for in, want := range map[string]string{
		"1+2j": "complex", "2j": "complex", "-0.5j": "complex", "{1, 2}": "set", "set()": "set",
		"...": "Ellipsis", "1e400": "overflows", "[-1e400]": "overflows", "{[1]: 2}": "unhashable type: 'list'",
		"{{ 6443 }}": "unhashable type: 'set'", "{(1, [2]): 3}": "unhashable type: 'list'",
	} {
		if v, err := parseValue(in); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("parseValue(%q) = %#v, %v; want an error about %s", in, v, err, want)
		}
	}
	for _, in := range []string{"a: .inf\n", "a: -.Inf\n", "a: .NaN\n", "a: !!binary aGk=\n", "2001-12-14: x\n", "a: !!python/tuple [1]\n", "a: =\n"} {
		if v, err := decodeVarsFile([]byte(in)); err == nil {
			t.Errorf("decodeVarsFile(%q) = %#v, want an error", in, v)
		}
	}
	v, err := decodeVarsFile([]byte("a: !!omap [{x: 1}, {y: 2}]\nd: 2001-12-14\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(strings.Fields(string(MarshalPython(v))), ""); got != `{"a":[["x",1],["y",2]],"d":"2001-12-14"}` {
		t.Errorf("omap and date: %s", got)
	}
}

func TestPyFloat(t *testing.T) {
	cases := map[float64]string{1: "1.0", 1.5: "1.5", 1e16: "1e+16", 1e15: "1000000000000000.0",
		0.0001: "0.0001", 0.00001: "1e-05", -2.5e-7: "-2.5e-07", 123456789.5: "123456789.5"}
	for f, want := range cases {
		if got := pyFloat(f); got != want {
			t.Errorf("pyFloat(%v) = %s, want %s", f, got, want)
		}
	}
	if s := strings.TrimSpace(string(MarshalPython(map[string]any{"a": []any{}}))); s != "{\n    \"a\": []\n}" {
		t.Errorf("MarshalPython layout: %q", s)
	}
}
