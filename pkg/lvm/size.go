package lvm

import (
	"fmt"
	"strconv"
	"strings"
)

// ParseSize reads a size as lvcreate -L does: a number and an optional
// unit, k m g t p e (powers of 1024, either case; m when none), b bytes,
// s 512-byte sectors.
func ParseSize(s string) (int64, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, fmt.Errorf("empty size")
	}
	unit := byte('m')
	num := s
	if c := s[len(s)-1]; c < '0' || c > '9' {
		unit = c | 0x20 // lower case
		num = s[:len(s)-1]
	}
	v, err := strconv.ParseFloat(num, 64)
	if err != nil || v <= 0 {
		return 0, fmt.Errorf("size %q: want a positive number and a unit like 52G", s)
	}
	mult := map[byte]float64{'b': 1, 's': 512, 'k': 1 << 10, 'm': 1 << 20, 'g': 1 << 30, 't': 1 << 40, 'p': 1 << 50, 'e': 1 << 60}[unit]
	if mult == 0 {
		return 0, fmt.Errorf("size %q: unknown unit %q", s, unit)
	}
	return int64(v * mult), nil
}

// roundUp rounds n up to a multiple of extent, as LVM allocates.
func roundUp(n, extent int64) int64 {
	if extent <= 0 {
		return n
	}
	return (n + extent - 1) / extent * extent
}

// human prints bytes the way operators read LVM sizes.
func human(n int64) string {
	switch {
	case n >= 1<<40:
		return fmt.Sprintf("%.2fT", float64(n)/(1<<40))
	case n >= 1<<30:
		return fmt.Sprintf("%.2fG", float64(n)/(1<<30))
	}
	return fmt.Sprintf("%.2fM", float64(n)/(1<<20))
}
