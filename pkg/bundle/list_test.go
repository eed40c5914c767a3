package bundle

import (
	"slices"
	"strings"
	"testing"
)

// List names every file, checksum, package index and image Build fetches
// with the same options, from the mirror and registry when given.
func TestList(t *testing.T) {
	v, err := VersionsFor(DefaultKubeVersion)
	if err != nil {
		t.Fatal(err)
	}
	d12, _ := DebSourceFor("debian-12", "http://deb.example/debian/")
	d11, _ := DebSourceFor("debian-11", "http://deb.example/debian")
	o := BuildOptions{Versions: v, Source: Source{Mirror: "http://mirror.example/"}, Registry: Registry{Host: "reg.example:5000"},
		Images: []string{"docker.io/library/traefik:v3", "registry.k8s.io/pause:" + v.Pause}, Debs: []DebSource{d12, d11}}
	lines, err := List(o)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range Artifacts(v) {
		if !slices.Contains(lines, "file\thttp://mirror.example/"+a.Host+"/"+a.Path) {
			t.Errorf("no file line for %s", a.Name)
		}
	}
	for _, want := range []string{
		"checksum\thttp://mirror.example/dl.k8s.io/release/" + v.Kube + "/bin/linux/amd64/kubeadm.sha256",
		"packages\thttp://deb.example/debian/dists/bookworm/InRelease",
		"packages\thttp://deb.example/debian/dists/bookworm/main/binary-amd64/Packages.gz",
		"packages\thttp://deb.example/debian/dists/bullseye/InRelease",
		"image\treg.example:5000/library/traefik:v3",
		"image\treg.example:5000/kube-apiserver:" + v.Kube,
	} {
		if !slices.Contains(lines, want) {
			t.Errorf("List lacks %q:\n%s", want, strings.Join(lines, "\n"))
		}
	}
	images := 0
	for _, l := range lines {
		if strings.HasPrefix(l, "image\t") {
			images++
		}
	}
	if want := len(withImages(v, o.Images)); images != want {
		t.Errorf("%d image lines, Build pulls %d images", images, want)
	}
	o.NoImages, o.Debs = true, nil
	lines, _ = List(o)
	for _, l := range lines {
		if strings.HasPrefix(l, "image\t") || strings.HasPrefix(l, "packages\t") {
			t.Errorf("--no-images --no-packages still lists %s", l)
		}
	}
}
