package main

import (
	"strings"
	"testing"
	"time"
)

func TestSecondsFlag(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"5": 5 * time.Second, "0": 0, "90s": 90 * time.Second, "2m": 2 * time.Minute,
		"1h30m": 90 * time.Minute, " 7 ": 7 * time.Second, "1.5s": 1500 * time.Millisecond,
	} {
		var s seconds
		if err := s.Set(in); err != nil || s.d != want {
			t.Errorf("%q: %v %v, want %v", in, s.d, err, want)
		}
	}
	for _, in := range []string{"", "abc", "-5", "5x", "-1s", "1e3", "99999999999999999999"} {
		var s seconds
		err := s.Set(in)
		if err == nil || !strings.Contains(err.Error(), secondsForms) {
			t.Errorf("%q: %v, want an error listing the accepted forms", in, err)
		}
	}
	for _, in := range []string{"0", "0s", "0m"} {
		s := seconds{positive: true}
		if err := s.Set(in); err == nil || !strings.Contains(err.Error(), "more than 0") {
			t.Errorf("positive %q: %v, want an error asking for more than 0", in, err)
		}
	}
}

// Every duration flag of every command takes plain seconds, and a bad
// value's error says which forms are accepted.
func TestDurationFlagsOnCommandLine(t *testing.T) {
	app := newApp(nil, nil)
	n := 0
	for _, cmd := range app.Commands {
		for _, sub := range append(cmd.Subcommands, cmd) {
			for _, f := range sub.Flags {
				name := f.Names()[0]
				if _, ok := f.(interface{ GetValue() string }); !ok {
					continue
				}
				if !strings.Contains(name, "timeout") {
					continue
				}
				n++
				args := []string{sub.Name, "--" + name, "5", "-i", "/nonexistent/hosts.ini"}
				if sub != cmd {
					args = append([]string{cmd.Name}, args...)
				}
				code, _, errOut := metalk8s(t, args...)
				if strings.Contains(errOut, "parse") || strings.Contains(errOut, "invalid value") {
					t.Errorf("%v: %d %s", args, code, errOut)
				}
				args[len(args)-3] = "soon"
				code, _, errOut = metalk8s(t, args...)
				if code != 2 || !strings.Contains(errOut, secondsForms) || !strings.Contains(errOut, name) {
					t.Errorf("%v: exit %d, %q: want 2 and the accepted forms", args, code, errOut)
				}
			}
		}
	}
	if n < 2 {
		t.Errorf("found %d duration flags, want --connect-timeout and --timeout at least", n)
	}
}
