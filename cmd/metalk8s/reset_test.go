package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestConfirm(t *testing.T) {
	for in, want := range map[string]bool{"yes\n": true, " YES \n": true, "yes": true, "y\n": false, "\n": false, "": false, "no\n": false, "yes please\n": false} {
		var out bytes.Buffer
		got, _ := confirm(strings.NewReader(in), &out, "Sure? ")
		if got != want || out.String() != "Sure? " {
			t.Errorf("answer %q: %v (asked %q), want %v", in, got, out.String(), want)
		}
	}
}
