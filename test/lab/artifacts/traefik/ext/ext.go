// Package ext stands in for Traefik's nested module of the same path,
// which the Go module proxy does not serve: extension points left empty.
package ext

// HTTP extends Traefik's dynamic HTTP configuration; empty here.
type HTTP struct{}

// Router extends a Traefik HTTP router; empty here.
type Router struct{}
