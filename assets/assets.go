// Package assets holds what the metalk8s binary embeds: the addon charts
// this project writes (charts/<name>/, Helm's chart layout), which
// pkg/addons installs as Helm releases.
package assets

import "embed"

// Charts holds charts/<name>/Chart.yaml, values.yaml and templates/.
//
//go:embed all:charts
var Charts embed.FS
