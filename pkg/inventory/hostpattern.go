package inventory

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// Host patterns follow Ansible's parse_address and expand_hostname_range:
// "node[01:10]", "web[a:f]", "db[0:10:2]", "host:2222", "[::1]:2222".

const (
	numRange   = `\[(?:[0-9]+:[0-9]+)(?::[0-9]+)?\]`
	hexRange   = `\[(?:[0-9a-fA-F]+:[0-9a-fA-F]+)(?::[0-9]+)?\]`
	alnumRange = `\[(?:[a-zA-Z]:[a-zA-Z]|[0-9]+:[0-9]+)(?::[0-9]+)?\]`
	word       = `[\p{L}\p{N}_]`
	wordNoUnd  = `[\p{L}\p{N}]`
)

var (
	reBracketedHostPort = regexp.MustCompile(`^\[(.+)\]:([0-9]+)$`)
	reHostPort          = regexp.MustCompile(`^((?:[^:\[\]]|\[[^\]]*\])*):([0-9]+)$`)
	i4                  = `(?:[01]?[0-9]{1,2}|2[0-4][0-9]|25[0-5]|` + numRange + `)`
	reIPv4              = regexp.MustCompile(`^(?:` + i4 + `\.){3}` + i4 + `$`)
	i6                  = `(?:[0-9a-fA-F]{1,4}|` + hexRange + `)`
	reIPv6              = regexp.MustCompile(`^(?:` + strings.Join([]string{
		`(?:` + i6 + `:){7}` + i6,
		`(?:` + i6 + `:){1,6}:`,
		`(?:` + i6 + `:)(?::` + i6 + `){1,6}`,
		`(?:` + i6 + `:){2}(?::` + i6 + `){1,5}`,
		`(?:` + i6 + `:){3}(?::` + i6 + `){1,4}`,
		`(?:` + i6 + `:){4}(?::` + i6 + `){1,3}`,
		`(?:` + i6 + `:){5}(?::` + i6 + `){1,2}`,
		`(?:` + i6 + `:){6}(?::` + i6 + `)`,
		`:(?::` + i6 + `){1,6}`,
		i6 + `?::`,
		`(?:0:){6}(?:` + i6 + `\.){3}` + i6,
		`::(?:ffff:)?(?:` + i6 + `\.){3}` + i6,
		`(?:0:){5}ffff:(?:` + i6 + `\.){3}` + i6,
	}, "|") + `)$`)
	// A label starts with a word character or a range and may not end
	// with '_' or '-' (Ansible's regex uses a look-behind for that).
	label      = `(?:(?:` + word + `|` + alnumRange + `)(?:[\p{L}\p{N}_-]|` + alnumRange + `)*)?(?:` + wordNoUnd + `|` + alnumRange + `)`
	reHostname = regexp.MustCompile(`^` + label + `(?:\.` + label + `)*$`)
)

// parseAddress splits an optional port from a host pattern. ok is false
// when the text is not a valid address, as Ansible's parse_address raises.
func parseAddress(addr string) (host string, port int, hasPort, ok bool) {
	for _, re := range []*regexp.Regexp{reBracketedHostPort, reHostPort} {
		if m := re.FindStringSubmatch(addr); m != nil {
			p, err := strconv.Atoi(m[2])
			if err != nil {
				return "", 0, false, false
			}
			addr, port, hasPort = m[1], p, true
		}
	}
	if reIPv4.MatchString(addr) || reIPv6.MatchString(addr) || reHostname.MatchString(addr) {
		return addr, port, hasPort, true
	}
	return "", 0, false, false
}

// expandHostPattern returns the host names a pattern stands for, and its port.
func expandHostPattern(pattern string) (hosts []string, port int, hasPort bool, err error) {
	name, p, hp, ok := parseAddress(pattern)
	if !ok {
		name, p, hp = pattern, 0, false
	}
	if strings.HasSuffix(strings.TrimSpace(pattern), ":") && !hp {
		return nil, 0, false, fmt.Errorf("Invalid host pattern '%s' supplied, ending in ':' is not allowed, this character is reserved to provide a port.", pattern)
	}
	if strings.Contains(name, "[") {
		hosts, err = expandRange(name)
		if err != nil {
			return nil, 0, false, err
		}
	} else {
		hosts = []string{name}
	}
	for _, h := range hosts {
		if strings.TrimSpace(h) == "---" {
			return nil, 0, false, fmt.Errorf("Invalid host pattern '%s' supplied, '---' is normally a sign this is a YAML file.", pattern)
		}
	}
	return hosts, p, hp, nil
}

const asciiLetters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"

// expandRange expands the first [begin:end(:step)] in name, recursively.
func expandRange(name string) ([]string, error) {
	// Ansible swaps the first '[' and the first ']' for '|' and needs
	// exactly three parts.
	swapped := strings.Replace(strings.Replace(name, "[", "|", 1), "]", "|", 1)
	parts := strings.Split(swapped, "|")
	if len(parts) != 3 {
		return nil, fmt.Errorf("host range in %q must be written [begin:end] or [begin:end:step]", name)
	}
	head, nrange, tail := parts[0], parts[1], parts[2]
	bounds := strings.Split(nrange, ":")
	if len(bounds) != 2 && len(bounds) != 3 {
		return nil, errors.New("host range must be begin:end or begin:end:step")
	}
	beg, end, stepText := bounds[0], bounds[1], "1"
	if len(bounds) == 3 {
		stepText = bounds[2]
	}
	if beg == "" {
		beg = "0"
	}
	if end == "" {
		return nil, errors.New("host range must specify end value")
	}
	width := 0
	if beg[0] == '0' && len(beg) > 1 {
		width = len(beg)
		if width != len(end) {
			return nil, errors.New("host range must specify equal-length begin and end formats")
		}
	}
	step, err := pyInt(stepText)
	if err != nil {
		return nil, err
	}
	var seq []string
	if step == 0 {
		return nil, errors.New("host range step must not be zero")
	}
	ib, ie := strings.Index(asciiLetters, beg), strings.Index(asciiLetters, end)
	if ib >= 0 && ie >= 0 {
		if ib > ie {
			return nil, errors.New("host range must have begin <= end")
		}
		for i := ib; step > 0 && i <= ie; i += step {
			seq = append(seq, asciiLetters[i:i+1])
		}
	} else {
		b, err := pyInt(beg)
		if err != nil {
			return nil, err
		}
		e, err := pyInt(end)
		if err != nil {
			return nil, err
		}
		for i := b; step > 0 && i <= e; i += step {
			s := strconv.Itoa(i)
			if width > 0 && len(s) < width {
				s = strings.Repeat("0", width-len(s)) + s
			}
			seq = append(seq, s)
		}
	}
	var out []string
	for _, s := range seq {
		h := head + s + tail
		if strings.Contains(h, "[") {
			more, err := expandRange(h)
			if err != nil {
				return nil, err
			}
			out = append(out, more...)
		} else {
			out = append(out, h)
		}
	}
	return out, nil
}

// pyInt parses like Python's int(): blanks around, an optional sign,
// underscores between digits.
func pyInt(s string) (int, error) {
	t := strings.TrimSpace(s)
	if validUnderscores(t) {
		t = strings.ReplaceAll(t, "_", "")
	}
	n, err := strconv.Atoi(t)
	if err != nil {
		return 0, fmt.Errorf("invalid literal for int() with base 10: '%s'", s)
	}
	return n, nil
}

// shlexSplit splits a host line like Python's shlex.split(line, comments=True).
func shlexSplit(line string) ([]string, error) {
	var out []string
	var tok strings.Builder
	inTok, quoted := false, false
	emit := func() {
		if inTok || quoted {
			out = append(out, tok.String())
		}
		tok.Reset()
		inTok, quoted = false, false
	}
	rs := []rune(line)
	for i := 0; i < len(rs); i++ {
		c := rs[i]
		switch {
		case c == ' ' || c == '\t' || c == '\r' || c == '\n':
			emit()
		case c == '#':
			emit()
			// The comment runs to the end of the line.
			for i < len(rs) && rs[i] != '\n' {
				i++
			}
		case c == '\\':
			if i+1 >= len(rs) {
				return nil, errors.New("No escaped character")
			}
			i++
			tok.WriteRune(rs[i])
			inTok = true
		case c == '\'' || c == '"':
			quoted, inTok = true, true
			j := i + 1
			for ; j < len(rs) && rs[j] != c; j++ {
				if c == '"' && rs[j] == '\\' && j+1 < len(rs) {
					if rs[j+1] == '"' || rs[j+1] == '\\' {
						j++
						tok.WriteRune(rs[j])
						continue
					}
				}
				tok.WriteRune(rs[j])
			}
			if j >= len(rs) {
				return nil, errors.New("No closing quotation")
			}
			i = j
		default:
			tok.WriteRune(c)
			inTok = true
		}
	}
	emit()
	return out, nil
}
