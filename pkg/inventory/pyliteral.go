package inventory

import (
	"errors"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Ansible types an INI value with Python's ast.literal_eval and keeps the
// raw text when that fails. parseValue does the same for the literals an
// inventory can hold: strings, numbers, True/False/None, lists, tuples,
// dicts and sets. Complex numbers and f-strings are left as text.
//
// Literals that Python accepts but JSON cannot hold (sets, complex numbers,
// Ellipsis, floats that overflow) are errors: ansible-inventory crashes on
// them, and no variable of ours can use them.
func parseValue(s string) (any, error) {
	v, err := literalEval(s)
	var ve *valueError
	if errors.As(err, &ve) {
		return nil, err
	}
	if err != nil {
		return s, nil
	}
	return finish(v)
}

var errNotLiteral = errors.New("not a literal")

// valueError is a literal Python accepts but that has no JSON form, or
// that Python itself refuses (an unhashable key).
type valueError struct{ msg string }

func (e *valueError) Error() string { return e.msg }

// Python values with no JSON form, kept until the whole literal is read:
// a later part may still make it plain text.
type (
	pySet      []any
	pyTuple    []any
	pyComplex  string
	pyEllipsis struct{}
)

// finish turns tuples into lists and refuses what JSON cannot hold.
func finish(v any) (any, error) {
	switch x := v.(type) {
	case pySet:
		return nil, &valueError{"a Python set has no JSON form; write a list [a, b]"}
	case pyComplex:
		return nil, &valueError{fmt.Sprintf("%s is a complex number, which has no JSON form", string(x))}
	case pyEllipsis:
		return nil, &valueError{"Ellipsis (...) has no JSON form"}
	case float64:
		if math.IsInf(x, 0) || math.IsNaN(x) {
			return nil, &valueError{"the number overflows a float (1e400 is infinite)"}
		}
	case pyTuple:
		return finish([]any(x))
	case []any:
		for i := range x {
			var err error
			if x[i], err = finish(x[i]); err != nil {
				return nil, err
			}
		}
	case map[string]any:
		for k := range x {
			var err error
			if x[k], err = finish(x[k]); err != nil {
				return nil, err
			}
		}
	}
	return v, nil
}

// hashable is Python's rule for set members and dict keys.
func hashable(v any) error {
	switch x := v.(type) {
	case []any:
		return &valueError{"unhashable type: 'list'"}
	case map[string]any:
		return &valueError{"unhashable type: 'dict'"}
	case pySet:
		return &valueError{"unhashable type: 'set'"}
	case pyTuple:
		for _, e := range x {
			if err := hashable(e); err != nil {
				return err
			}
		}
	}
	return nil
}

func literalEval(s string) (any, error) {
	p := &pyParser{src: strings.TrimLeft(s, " \t")}
	p.next()
	v, err := p.exprList(true)
	if p.hard != nil {
		return nil, p.hard
	}
	if err != nil {
		return nil, err
	}
	if p.tok.kind != tEOF {
		return nil, errNotLiteral
	}
	return v, nil
}

type tokKind int

const (
	tEOF tokKind = iota
	tName
	tNum
	tStr
	tOp
)

type pyTok struct {
	kind tokKind
	text string // name, operator or number text
	val  any    // decoded string or number
}

type pyParser struct {
	src  string
	pos  int
	tok  pyTok
	err  error
	hard error // a TypeError: Python fails rather than keep the text
}

func (p *pyParser) fail() {
	if p.err == nil {
		p.err = errNotLiteral
	}
	p.tok = pyTok{kind: tEOF}
}

// next reads one token, skipping blanks and comments.
func (p *pyParser) next() {
	if p.err != nil {
		return
	}
	for p.pos < len(p.src) {
		c := p.src[p.pos]
		if c == ' ' || c == '\t' || c == '\f' {
			p.pos++
			continue
		}
		if c == '#' {
			p.pos = len(p.src)
			break
		}
		break
	}
	if p.pos >= len(p.src) {
		p.tok = pyTok{kind: tEOF}
		return
	}
	rest := p.src[p.pos:]
	c := rest[0]
	switch {
	case strings.HasPrefix(rest, "..."):
		p.tok = pyTok{kind: tName, text: "..."}
		p.pos += 3
	case c >= '0' && c <= '9' || c == '.' && len(rest) > 1 && rest[1] >= '0' && rest[1] <= '9':
		n := scanNumber(rest)
		if n < 0 { // a complex literal: 2j
			p.tok = pyTok{kind: tNum, text: rest[:-n], val: pyComplex(rest[:-n])}
			p.pos += -n
			return
		}
		if n == 0 {
			p.fail()
			return
		}
		v, err := numberValue(rest[:n])
		if err != nil {
			p.fail()
			return
		}
		p.tok = pyTok{kind: tNum, text: rest[:n], val: v}
		p.pos += n
	case strings.ContainsRune("[](){},:+-", rune(c)):
		p.tok = pyTok{kind: tOp, text: rest[:1]}
		p.pos++
	default:
		r, _ := utf8.DecodeRuneInString(rest)
		if r == '_' || unicode.IsLetter(r) {
			n := 0
			for n < len(rest) {
				r, size := utf8.DecodeRuneInString(rest[n:])
				if r != '_' && !unicode.IsLetter(r) && !unicode.IsDigit(r) {
					break
				}
				n += size
			}
			name := rest[:n]
			if q := n; q < len(rest) && (rest[q] == '\'' || rest[q] == '"') && isStrPrefix(name) {
				p.stringToken(rest, n)
				return
			}
			p.tok = pyTok{kind: tName, text: name}
			p.pos += n
			return
		}
		if c == '\'' || c == '"' {
			p.stringToken(rest, 0)
			return
		}
		p.fail()
	}
}

// stringToken reads the string literal at rest[prefix:].
func (p *pyParser) stringToken(rest string, prefix int) {
	s, size, err := scanString(rest, prefix)
	if err != nil {
		p.fail()
		return
	}
	p.tok = pyTok{kind: tStr, val: s}
	p.pos += size
}

func isStrPrefix(s string) bool {
	switch strings.ToLower(s) {
	case "r", "u", "b", "br", "rb":
		return true
	}
	return false // f-strings and others are not literals
}

// exprList parses an expression, or a bare tuple "a, b" when top is true.
func (p *pyParser) exprList(top bool) (any, error) {
	first, err := p.expr()
	if err != nil {
		return nil, err
	}
	if !top || !p.isOp(",") {
		return first, nil
	}
	items := []any{first}
	for p.isOp(",") {
		p.next()
		if p.tok.kind == tEOF {
			break
		}
		v, err := p.expr()
		if err != nil {
			return nil, err
		}
		items = append(items, v)
	}
	return pyTuple(items), p.err
}

func (p *pyParser) isOp(op string) bool { return p.tok.kind == tOp && p.tok.text == op }

func (p *pyParser) expr() (any, error) {
	if p.err != nil {
		return nil, p.err
	}
	t := p.tok
	switch t.kind {
	case tNum:
		p.next()
		return p.binop(t.val)
	case tStr:
		s := t.val.(string)
		p.next()
		for p.tok.kind == tStr { // implicit concatenation
			s += p.tok.val.(string)
			p.next()
		}
		return s, p.err
	case tName:
		p.next()
		switch t.text {
		case "True":
			return true, p.err
		case "False":
			return false, p.err
		case "None":
			return nil, p.err
		case "...":
			return pyEllipsis{}, p.err
		case "set":
			if p.isOp("(") {
				p.next()
				if p.isOp(")") {
					p.next()
					return pySet{}, p.err
				}
			}
		}
		return nil, errNotLiteral
	case tOp:
		switch t.text {
		case "+", "-":
			p.next()
			// The operand is a number, maybe in parentheses: "-(1)".
			parens := 0
			for p.isOp("(") {
				parens++
				p.next()
			}
			if p.tok.kind != tNum {
				return nil, errNotLiteral
			}
			v := p.tok.val
			p.next()
			for ; parens > 0; parens-- {
				if !p.isOp(")") {
					return nil, errNotLiteral
				}
				p.next()
			}
			if t.text == "-" {
				v = negate(v)
			}
			return p.binop(v)
		case "[":
			p.next()
			return p.seq("]")
		case "(":
			p.next()
			if p.isOp(")") {
				p.next()
				return pyTuple{}, p.err
			}
			v, err := p.expr()
			if err != nil {
				return nil, err
			}
			if p.isOp(")") {
				p.next()
				return v, p.err
			}
			if !p.isOp(",") {
				return nil, errNotLiteral
			}
			p.next()
			rest, err := p.seq(")")
			if err != nil {
				return nil, err
			}
			return pyTuple(append([]any{v}, rest.([]any)...)), nil
		case "{":
			p.next()
			return p.dictOrSet()
		}
	}
	return nil, errNotLiteral
}

// binop handles "1 + 2j", the one sum literal_eval allows (a complex
// number); "1 + 2" is not a literal.
func (p *pyParser) binop(left any) (any, error) {
	if !p.isOp("+") && !p.isOp("-") {
		return left, p.err
	}
	p.next()
	if c, ok := p.tok.val.(pyComplex); ok && p.tok.kind == tNum {
		if _, leftComplex := left.(pyComplex); !leftComplex {
			p.next()
			return pyComplex(fmt.Sprint(left) + "+" + string(c)), p.err
		}
	}
	return nil, errNotLiteral
}

func (p *pyParser) seq(end string) (any, error) {
	items := []any{}
	for !p.isOp(end) {
		v, err := p.expr()
		if err != nil {
			return nil, err
		}
		items = append(items, v)
		if p.isOp(",") {
			p.next()
			continue
		}
		if !p.isOp(end) {
			return nil, errNotLiteral
		}
	}
	p.next()
	return items, p.err
}

func (p *pyParser) dictOrSet() (any, error) {
	if p.isOp("}") {
		p.next()
		return map[string]any{}, p.err
	}
	first, err := p.expr()
	if err != nil {
		return nil, err
	}
	if !p.isOp(":") { // a set
		items := []any{first}
		if p.isOp(",") {
			p.next()
			rest, err := p.seq("}")
			if err != nil {
				return nil, err
			}
			items = append(items, rest.([]any)...)
		} else if p.isOp("}") {
			p.next()
		} else {
			return nil, errNotLiteral
		}
		for _, it := range items {
			if err := hashable(it); err != nil {
				p.hard = err
				return nil, err
			}
		}
		return pySet(items), p.err
	}
	var m pyDict
	key := first
	for {
		p.next() // past ':'
		v, err := p.expr()
		if err != nil {
			return nil, err
		}
		if err := hashable(key); err != nil {
			p.hard = err
			return nil, err
		}
		if !m.set(key, v) {
			p.hard = &valueError{fmt.Sprintf("dict key %v has no JSON form", key)}
			return nil, p.hard
		}
		if p.isOp(",") {
			p.next()
		}
		if p.isOp("}") {
			p.next()
			return m.toMap(), p.err
		}
		key, err = p.expr()
		if err != nil {
			return nil, err
		}
		if !p.isOp(":") {
			return nil, errNotLiteral
		}
	}
}

// pyDict builds a dict as Python does: 1, 1.0 and True are one key, and
// the key first written is the one kept.
type pyDict struct {
	names map[string]string // canonical key -> JSON key
	vals  map[string]any
	order []string
}

func (d *pyDict) set(k, v any) bool {
	name, ok := jsonKey(k)
	if !ok {
		return false
	}
	if d.names == nil {
		d.names, d.vals = map[string]string{}, map[string]any{}
	}
	c := canonKey(k)
	if _, seen := d.names[c]; !seen {
		d.names[c] = name
		d.order = append(d.order, c)
	}
	d.vals[c] = v
	return true
}

func (d *pyDict) toMap() map[string]any {
	out := make(map[string]any, len(d.order))
	for _, c := range d.order {
		out[d.names[c]] = d.vals[c]
	}
	return out
}

func canonKey(k any) string {
	switch k := k.(type) {
	case bool:
		if k {
			return "n:1"
		}
		return "n:0"
	case float64:
		if k == math.Trunc(k) && !math.IsInf(k, 0) && math.Abs(k) < 1e18 {
			return "n:" + strconv.FormatInt(int64(k), 10)
		}
		return "f:" + pyFloat(k)
	case string:
		return "s:" + k
	}
	j, _ := jsonKey(k)
	return "n:" + j
}

// jsonKey is the key Python's json module writes for a dict key.
func jsonKey(k any) (string, bool) {
	switch k := k.(type) {
	case string:
		return k, true
	case bool:
		if k {
			return "true", true
		}
		return "false", true
	case nil:
		return "null", true
	case int64:
		return strconv.FormatInt(k, 10), true
	case *big.Int:
		return k.String(), true
	case float64:
		return pyFloat(k), true
	}
	return "", false
}

func negate(v any) any {
	switch v := v.(type) {
	case int64:
		if v == math.MinInt64 {
			return new(big.Int).Neg(big.NewInt(v))
		}
		return -v
	case *big.Int:
		n := new(big.Int).Neg(v)
		if n.IsInt64() {
			return n.Int64()
		}
		return n
	case float64:
		return -v
	}
	return v
}

// scanNumber returns the length of the Python number token at the start of s.
func scanNumber(s string) int {
	i := 0
	isDigitOr := func(c byte, digits string) bool { return strings.IndexByte(digits, c) >= 0 }
	if len(s) > 1 && s[0] == '0' && strings.IndexByte("xXoObB", s[1]) >= 0 {
		i = 2
		for i < len(s) && (isDigitOr(s[i], "0123456789abcdefABCDEF_")) {
			i++
		}
		return i
	}
	for i < len(s) && isDigitOr(s[i], "0123456789_.") {
		i++
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		j := i + 1
		if j < len(s) && (s[j] == '+' || s[j] == '-') {
			j++
		}
		if j < len(s) && s[j] >= '0' && s[j] <= '9' {
			i = j
			for i < len(s) && isDigitOr(s[i], "0123456789_") {
				i++
			}
		}
	}
	if i < len(s) && (s[i] == 'j' || s[i] == 'J') {
		if _, err := numberValue(s[:i]); err != nil {
			return 0
		}
		return -(i + 1) // a complex literal
	}
	// A number glued to a name ("1abc") is a syntax error.
	if i < len(s) {
		r, _ := utf8.DecodeRuneInString(s[i:])
		if r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r) {
			return 0
		}
	}
	return i
}

// numberValue decodes a Python int or float literal.
func numberValue(t string) (any, error) {
	if !validUnderscores(t) {
		return nil, errNotLiteral
	}
	clean := strings.ReplaceAll(t, "_", "")
	if len(clean) > 1 && clean[0] == '0' && strings.IndexByte("xXoObB", clean[1]) >= 0 {
		base := map[byte]int{'x': 16, 'o': 8, 'b': 2}[clean[1]|0x20]
		n, ok := new(big.Int).SetString(clean[2:], base)
		if !ok || clean[2:] == "" {
			return nil, errNotLiteral
		}
		return bigOrInt(n), nil
	}
	if strings.ContainsAny(clean, ".eE") {
		f, err := strconv.ParseFloat(clean, 64)
		if err != nil && !errors.Is(err, strconv.ErrRange) {
			return nil, errNotLiteral
		}
		return f, nil
	}
	// Decimal ints may not have leading zeros, except zero itself.
	if len(clean) > 1 && clean[0] == '0' && strings.Trim(clean, "0") != "" {
		return nil, errNotLiteral
	}
	// Python 3.11 refuses decimal literals of more than 4300 digits.
	if len(strings.TrimLeft(clean, "0")) > 4300 {
		return nil, errNotLiteral
	}
	n, ok := new(big.Int).SetString(clean, 10)
	if !ok {
		return nil, errNotLiteral
	}
	return bigOrInt(n), nil
}

func bigOrInt(n *big.Int) any {
	if n.IsInt64() {
		return n.Int64()
	}
	return n
}

// validUnderscores: an underscore may only stand between two digits
// (or right after a base prefix).
func validUnderscores(t string) bool {
	for i := 0; i < len(t); i++ {
		if t[i] != '_' {
			continue
		}
		if i == 0 || i == len(t)-1 {
			return false
		}
		prev, next := t[i-1], t[i+1]
		prevOK := isHexDigit(prev) || (i == 2 && t[0] == '0' && strings.IndexByte("xXoObB", prev) >= 0)
		if !prevOK || !isHexDigit(next) {
			return false
		}
		if (prev == 'e' || prev == 'E' || next == 'e' || next == 'E') && !(len(t) > 1 && (t[1]|0x20) == 'x') {
			return false
		}
	}
	return true
}

func isHexDigit(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

// scanString decodes the Python string literal at s[start:], where s[:start]
// is its prefix. It returns the text and the bytes consumed.
func scanString(s string, start int) (string, int, error) {
	prefix := strings.ToLower(s[:start])
	raw := strings.Contains(prefix, "r")
	isBytes := strings.Contains(prefix, "b")
	q := s[start : start+1]
	i := start + 1
	if strings.HasPrefix(s[start:], q+q+q) {
		q = q + q + q
		i = start + 3
	}
	var b strings.Builder
	for {
		if i >= len(s) {
			return "", 0, errNotLiteral
		}
		if strings.HasPrefix(s[i:], q) {
			i += len(q)
			break
		}
		c := s[i]
		if len(q) == 1 && (c == '\n' || c == '\r') {
			return "", 0, errNotLiteral
		}
		if isBytes && c >= 0x80 {
			return "", 0, errNotLiteral
		}
		if c != '\\' {
			b.WriteByte(c)
			i++
			continue
		}
		if i+1 >= len(s) {
			return "", 0, errNotLiteral
		}
		if raw {
			b.WriteString(s[i : i+2])
			i += 2
			continue
		}
		n, err := unescape(&b, s[i+1:], isBytes)
		if err != nil {
			return "", 0, err
		}
		i += 1 + n
	}
	out := b.String()
	if !utf8.ValidString(out) {
		return "", 0, errNotLiteral
	}
	return out, i, nil
}

// unescape writes the meaning of the escape after a backslash and returns
// how many bytes of s it used.
func unescape(b *strings.Builder, s string, isBytes bool) (int, error) {
	c := s[0]
	simple := map[byte]string{'\n': "", '\\': "\\", '\'': "'", '"': "\"", 'a': "\a",
		'b': "\b", 'f': "\f", 'n': "\n", 'r': "\r", 't': "\t", 'v': "\v"}
	if r, ok := simple[c]; ok {
		b.WriteString(r)
		return 1, nil
	}
	hexRune := func(width int) (int, error) {
		if len(s) < 1+width {
			return 0, errNotLiteral
		}
		n, err := strconv.ParseUint(s[1:1+width], 16, 32)
		if err != nil || n > unicode.MaxRune {
			return 0, errNotLiteral
		}
		b.WriteRune(rune(n))
		return 1 + width, nil
	}
	switch {
	case c >= '0' && c <= '7':
		n := 1
		for n < 3 && n < len(s) && s[n] >= '0' && s[n] <= '7' {
			n++
		}
		v, _ := strconv.ParseUint(s[:n], 8, 32)
		b.WriteRune(rune(v))
		return n, nil
	case c == 'x':
		return hexRune(2)
	case c == 'u' && !isBytes:
		return hexRune(4)
	case c == 'U' && !isBytes:
		return hexRune(8)
	case c == 'N' && !isBytes:
		return 0, errNotLiteral // named escapes need Unicode's name table
	}
	b.WriteByte('\\') // unknown escapes are kept as written
	return 0, nil
}
