package bundle

import (
	"fmt"
	"strings"
)

// List is what Build would fetch with o, one "KIND\tWHERE" line each, for
// the mirror team of an air-gapped site: "file" and "checksum" URLs of the
// release sites (or o.Source's mirror), "packages" URLs of each OS
// family's index, then its pool with the packages Build resolves from
// that index (their dependencies with them), and "image" references as
// pulled (from o.Registry when set). Nothing is fetched.
func List(o BuildOptions) ([]string, error) {
	var out []string
	for _, a := range Artifacts(o.Versions) {
		out = append(out, "file\t"+o.Source.URL(a, ""))
		for _, sum := range a.Sums {
			out = append(out, "checksum\t"+o.Source.sumURL(a, sum))
		}
	}
	for _, d := range o.Debs {
		rel, pkgs, _ := d.indexURLs()
		out = append(out, "packages\t"+rel, "packages\t"+pkgs,
			fmt.Sprintf("packages\t%s/pool/ (%s, with the dependencies a minimal %s lacks)",
				strings.TrimRight(d.Mirror, "/"), strings.Join(NodePackages, " "), d.Family))
	}
	if !o.NoImages {
		for _, img := range withImages(o.Versions, o.Images) {
			ref, err := o.Registry.Ref(img)
			if err != nil {
				return nil, err
			}
			if o.Registry.Host == "" {
				out = append(out, "image\t"+img) // as written, docker.io not expanded
			} else {
				out = append(out, "image\t"+ref.Name())
			}
		}
	}
	return out, nil
}
