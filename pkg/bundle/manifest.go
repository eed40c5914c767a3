package bundle

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// ManifestName is the manifest's file name in a bundle.
const ManifestName = "manifest.json"

// Manifest lists every file of a bundle with its hash, and every image
// with its digest.
type Manifest struct {
	Versions           Versions  `json:"versions"`
	Files              []File    `json:"files"`
	Images             []Image   `json:"images"`
	Packages           []Package `json:"packages,omitempty"`
	ImageArchive       string    `json:"image_archive,omitempty"` // one archive for all images
	ImageArchiveSHA256 string    `json:"image_archive_sha256,omitempty"`
}

// File is a binary or archive of the bundle.
type File struct {
	Name   string `json:"name"`
	Path   string `json:"path"` // relative to the bundle
	SHA256 string `json:"sha256"`
	Size   int64  `json:"size"`
	Source string `json:"source"`
	// ArchiveSHA256 is set for a file extracted from a published archive
	// (Source): the archive's SHA-256, SHA256 being the file's own.
	ArchiveSHA256 string `json:"archive_sha256,omitempty"`
}

// Image is a container image of the bundle's image archive.
type Image struct {
	Name   string `json:"name"`   // the upstream reference
	Digest string `json:"digest"` // image ID: its config's digest, as CRI reports it
}

// ReadManifest reads DIR/manifest.json.
func ReadManifest(dir string) (*Manifest, error) {
	data, err := os.ReadFile(filepath.Join(dir, ManifestName))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%s is not a bundle: no %s", dir, ManifestName)
		}
		return nil, err
	}
	var m Manifest
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("%s: %v", filepath.Join(dir, ManifestName), err)
	}
	return &m, nil
}

func (m *Manifest) file(name string) (File, bool) {
	for _, f := range m.Files {
		if f.Name == name {
			return f, true
		}
	}
	return File{}, false
}

// Verify rechecks every file hash and every image of the archive, and
// reports what a release of want would need that the bundle lacks, images
// (more references: the addons' rendered charts') included. Each problem
// is one line ("kubectl: missing (bin/kubectl)").
func Verify(dir string, want Versions, images ...string) ([]string, error) {
	m, err := ReadManifest(dir)
	if err != nil {
		return nil, err
	}
	var problems []string
	for _, f := range m.Files {
		sum, size, err := fileSHA256(filepath.Join(dir, f.Path))
		switch {
		case errors.Is(err, os.ErrNotExist):
			problems = append(problems, fmt.Sprintf("%s: missing (%s)", f.Name, f.Path))
		case err != nil:
			problems = append(problems, fmt.Sprintf("%s: %v", f.Name, err))
		case sum != f.SHA256 || size != f.Size:
			problems = append(problems, fmt.Sprintf("%s: %s is damaged: SHA-256 %s, the manifest says %s", f.Name, f.Path, sum, f.SHA256))
		}
	}
	for _, p := range m.Packages {
		sum, _, err := fileSHA256(filepath.Join(dir, p.Path))
		if err != nil {
			problems = append(problems, fmt.Sprintf("package %s: %v", p.Name, err))
		} else if sum != p.SHA256 {
			problems = append(problems, fmt.Sprintf("package %s: %s is damaged", p.Name, p.Path))
		}
	}
	for _, a := range Artifacts(want) {
		f, ok := m.file(a.Name)
		if !ok {
			problems = append(problems, fmt.Sprintf("%s: not in the bundle", a.Name))
		} else if f.Path != a.Dest || !strings.HasSuffix(f.Source, a.Host+"/"+a.Path) {
			problems = append(problems, fmt.Sprintf("%s: the bundle holds %s, the versions asked for need %s", a.Name, f.Source, a.Host+"/"+a.Path))
		}
	}
	have := map[string]bool{}
	for _, img := range m.Images {
		have[img.Name] = true
	}
	if m.ImageArchive != "" {
		if sum, _, err := fileSHA256(filepath.Join(dir, m.ImageArchive)); err != nil || sum != m.ImageArchiveSHA256 {
			problems = append(problems, fmt.Sprintf("image archive %s: damaged or missing", m.ImageArchive))
		}
	}
	if len(m.Images) > 0 {
		digests, err := archiveDigests(filepath.Join(dir, m.ImageArchive))
		if err != nil {
			problems = append(problems, fmt.Sprintf("image archive %s: %v", m.ImageArchive, err))
		} else {
			for _, img := range m.Images {
				if d, ok := digests[img.Name]; !ok {
					problems = append(problems, fmt.Sprintf("image %s: not in %s", img.Name, m.ImageArchive))
				} else if d != img.Digest {
					problems = append(problems, fmt.Sprintf("image %s: digest %s, the manifest says %s", img.Name, d, img.Digest))
				}
			}
		}
	}
	for _, name := range withImages(want, images) {
		if !have[name] {
			problems = append(problems, fmt.Sprintf("image %s: not in the bundle", name))
		}
	}
	sort.Strings(problems)
	return problems, nil
}
