package main

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"
)

// seconds is a duration flag's value: whole seconds as Ansible's timeouts
// take them (--timeout 10, ansible.cfg's timeout, ansible_ssh_timeout:
// integers, ansible/config/base.yml), or a Go duration with its unit
// (90s, 2m, 1h30m, time.ParseDuration).
// With positive set, 0 is refused (a connect or drain timeout of zero
// would give up at once).
type seconds struct {
	d        time.Duration
	positive bool
}

const secondsForms = "whole seconds (30) or a duration with a unit (90s, 2m, 1h30m)"

func (s *seconds) Set(v string) error {
	v = strings.TrimSpace(v)
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n < 0 || n > int64(time.Duration(1<<63-1)/time.Second) {
			return fmt.Errorf("%q is out of range: give %s", v, secondsForms)
		}
		return s.set(time.Duration(n) * time.Second)
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return fmt.Errorf("%q is not a duration: give %s", v, secondsForms)
	}
	return s.set(d)
}

func (s *seconds) set(d time.Duration) error {
	if d == 0 && s.positive {
		return fmt.Errorf("give more than 0 (%s)", secondsForms)
	}
	s.d = d
	return nil
}

func (s *seconds) String() string {
	if s == nil || s.d == 0 {
		return ""
	}
	return s.d.String()
}

// durationFlag is a flag taking seconds or a Go duration; 0 is refused.
func durationFlag(name, usage string) *cli.GenericFlag {
	return &cli.GenericFlag{Name: name, Value: &seconds{positive: true}, Usage: usage + "; " + secondsForms}
}

// limitFlag is a durationFlag where 0 means no limit.
func limitFlag(name, usage string) *cli.GenericFlag {
	return &cli.GenericFlag{Name: name, Value: &seconds{}, Usage: usage + "; " + secondsForms + "; 0: no limit"}
}

// duration reads a durationFlag.
func duration(c *cli.Context, name string) time.Duration {
	if s, ok := c.Generic(name).(*seconds); ok {
		return s.d
	}
	return 0
}
