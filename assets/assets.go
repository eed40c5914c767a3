// Package assets holds what the metalk8s binary embeds: the addon charts
// this project writes (charts/<name>/, Helm's chart layout), which
// pkg/addons installs as Helm releases, and the files taken from other
// modules at build time (charts/gateway-api/files/, written by
// `go generate`, git-ignored).
package assets

import "embed"

//go:generate go run ./gen

// Charts holds charts/<name>/Chart.yaml, values.yaml, templates/ and
// files/.
//
//go:embed all:charts
var Charts embed.FS
