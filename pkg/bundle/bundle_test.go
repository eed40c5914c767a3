package bundle

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/klauspost/compress/zstd"
)

// The sources here are real servers on loopback: an HTTP mirror laid out
// like the release sites, and an OCI registry (go-containerregistry's).

type lab struct {
	mirror   *httptest.Server
	files    map[string][]byte // URL path -> content
	registry Registry
	v        Versions
	ids      map[string]string // image -> config digest in the registry
}

func newLab(t *testing.T) *lab {
	t.Helper()
	v, err := VersionsFor(DefaultKubeVersion)
	if err != nil {
		t.Fatal(err)
	}
	l := &lab{files: map[string][]byte{}, v: v, ids: map[string]string{}}
	for _, a := range Artifacts(v) {
		data := []byte("content of " + a.Name + " " + a.Path)
		if a.Extract != "" { // a .tar.gz holding the file, as get.helm.sh's
			data = tarGz(t, map[string]string{path.Dir(a.Extract) + "/LICENSE": "license", a.Extract: "the " + a.Name + " binary"})
		}
		sum := sha256.Sum256(data)
		p := "/" + a.Host + "/" + a.Path
		l.files[p] = data
		// Like the real sites, some publish "HASH  file", some "HASH", and
		// runc one runc.sha256sum for all its files.
		switch a.Name {
		case "containerd":
			l.files[p+".sha256sum"] = []byte(hex.EncodeToString(sum[:]) + "  " + filepath.Base(a.Path) + "\n")
		case "helm":
			l.files[p+".sha256sum"] = []byte(hex.EncodeToString(sum[:]) + "  " + filepath.Base(a.Path) + "\n")
		case "node_exporter": // Prometheus's one sha256sums.txt per release
			l.files[path.Dir(p)+"/sha256sums.txt"] = []byte(strings.Repeat("1", 64) + "  node_exporter-x.linux-arm64.tar.gz\n" +
				hex.EncodeToString(sum[:]) + "  " + filepath.Base(a.Path) + "\n")
		case "runc":
			l.files[path.Dir(p)+"/runc.sha256sum"] = []byte(strings.Repeat("0", 64) + "  runc.arm64\n" + hex.EncodeToString(sum[:]) + " *runc.amd64\n")
		default:
			l.files[p+".sha256"] = []byte(hex.EncodeToString(sum[:]) + "\n")
		}
	}
	l.mirror = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		data, ok := l.files[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Write(data)
	}))
	t.Cleanup(l.mirror.Close)
	reg := httptest.NewServer(quietRegistry())
	t.Cleanup(reg.Close)
	host := strings.TrimPrefix(reg.URL, "http://")
	l.registry = Registry{Host: host, Insecure: true}
	for _, up := range append(Images(v), extraImage) {
		img, err := random.Image(512, 2)
		if err != nil {
			t.Fatal(err)
		}
		ref, err := l.registry.Ref(up)
		if err != nil {
			t.Fatal(err)
		}
		if err := remote.Write(ref, img); err != nil {
			t.Fatal(err)
		}
		id, _ := img.ConfigName()
		l.ids[up] = id.String()
	}
	return l
}

// tarGz is a gzipped tar of files (name -> content), mode 0755.
func tarGz(t *testing.T, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if err := tw.WriteHeader(&tar.Header{Name: n, Mode: 0o755, Size: int64(len(files[n])), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(files[n]))
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	zw.Close()
	return buf.Bytes()
}

// extraImage is what an addon's chart, rendered with an operator's values,
// could run beside the versions' images.
const extraImage = "example.org/tools/extra:1"

func quietRegistry() http.Handler {
	return registry.New(registry.Logger(log.New(io.Discard, "", 0)))
}

func (l *lab) options(out string) BuildOptions {
	return BuildOptions{Out: out, Versions: l.v, Source: Source{Mirror: l.mirror.URL}, Registry: l.registry}
}

func TestBuildAndVerify(t *testing.T) {
	l := newLab(t)
	out := filepath.Join(t.TempDir(), "bundle")
	ctx := context.Background()
	o := l.options(out)
	o.Images = []string{Images(l.v)[0], extraImage} // one the versions have, one more
	m, err := Build(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Files) != len(Artifacts(l.v)) || len(m.Images) != len(Images(l.v))+1 || len(m.Images) != 11 ||
		m.Images[len(m.Images)-1].Name != extraImage {
		t.Fatalf("manifest: %d files, %d images %v", len(m.Files), len(m.Images), m.Images)
	}
	kubeadm, _ := m.file("kubeadm")
	if st, err := os.Stat(filepath.Join(out, "bin/kubeadm")); err != nil || st.Mode().Perm() != 0o755 || kubeadm.Source != l.mirror.URL+"/dl.k8s.io/release/"+DefaultKubeVersion+"/bin/linux/amd64/kubeadm" {
		t.Errorf("kubeadm: %v %v %+v", st.Mode(), err, kubeadm)
	}
	// helm: the binary out of get.helm.sh's archive, hashed as extracted
	helm, _ := m.file("helm")
	data, err := os.ReadFile(filepath.Join(out, "bin/helm"))
	st, _ := os.Stat(filepath.Join(out, "bin/helm"))
	if sum := sha256.Sum256(data); err != nil || string(data) != "the helm binary" || st.Mode().Perm() != 0o755 ||
		helm.SHA256 != hex.EncodeToString(sum[:]) || helm.ArchiveSHA256 == "" || helm.ArchiveSHA256 == helm.SHA256 ||
		helm.Source != l.mirror.URL+"/get.helm.sh/helm-v4.2.4-linux-amd64.tar.gz" {
		t.Errorf("helm: %q %v %+v", data, err, helm)
	}
	if problems, err := Verify(out, l.v, extraImage); err != nil || len(problems) != 0 {
		t.Fatalf("verify a fresh bundle: %v %v", problems, err)
	}
	if problems, _ := Verify(out, l.v, "example.org/tools/other:2"); len(problems) != 1 || problems[0] != "image example.org/tools/other:2: not in the bundle" {
		t.Errorf("verify with an image the bundle lacks: %q", problems)
	}
	// The archive holds the images under their upstream names, with the
	// registry's IDs, and zstd layers whose digests and diff IDs hold.
	digests, err := archiveDigests(filepath.Join(out, m.ImageArchive))
	for _, want := range m.Images {
		if err != nil || digests[want.Name] != want.Digest {
			t.Fatalf("archive lacks %s: %v %v", want.Name, digests, err)
		}
		if l.ids[want.Name] != want.Digest {
			t.Errorf("%s: ID %s, the registry's is %s", want.Name, want.Digest, l.ids[want.Name])
		}
		tag, _ := name.NewTag(want.Name)
		img, err := tarball.ImageFromPath(filepath.Join(out, m.ImageArchive), &tag)
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		ls, _ := img.Layers()
		if len(ls) != len(cfg.RootFS.DiffIDs) || len(ls) == 0 {
			t.Fatalf("%s: %d layers, %d diff IDs", want.Name, len(ls), len(cfg.RootFS.DiffIDs))
		}
		for i, layer := range ls {
			rc, err := layer.Compressed()
			if err != nil {
				t.Fatal(err)
			}
			zr, err := zstd.NewReader(rc)
			if err != nil {
				t.Fatal(err)
			}
			h := sha256.New()
			_, err = io.Copy(h, zr)
			zr.Close()
			rc.Close()
			if got := "sha256:" + hex.EncodeToString(h.Sum(nil)); err != nil || got != cfg.RootFS.DiffIDs[i].String() {
				t.Errorf("%s: layer %d: zstd content %s, config says %s (%v)", want.Name, i, got, cfg.RootFS.DiffIDs[i], err)
			}
		}
	}

	// A second build reuses what is there.
	var log bytes.Buffer
	o.Log = &log
	if _, err := Build(ctx, o); err != nil {
		t.Fatal(err)
	}
	if strings.Count(log.String(), "(unchanged)") != len(Artifacts(l.v)) {
		t.Errorf("rebuild downloaded again:\n%s", log.String())
	}

	// Damage, loss and other versions are all reported.
	os.WriteFile(filepath.Join(out, "bin/kubelet"), []byte("tampered"), 0o755)
	os.Remove(filepath.Join(out, "bin/kubectl"))
	other := l.v
	other.Kube = "v1.36.99"
	problems, err := Verify(out, other)
	if err != nil {
		t.Fatal(err)
	}
	all := strings.Join(problems, "\n")
	for _, want := range []string{"kubelet: bin/kubelet is damaged", "kubectl: missing", "kubeadm: the bundle holds", "image registry.k8s.io/kube-apiserver:v1.36.99: not in the bundle"} {
		if !strings.Contains(all, want) {
			t.Errorf("verify lacks %q:\n%s", want, all)
		}
	}
}

func TestBuildFailuresLeaveNothing(t *testing.T) {
	l := newLab(t)
	ctx := context.Background()
	out := filepath.Join(t.TempDir(), "bundle")
	if _, err := Build(ctx, l.options(out)); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(filepath.Join(out, ManifestName))

	// A missing artifact names itself and its URL; the old bundle stays.
	etcd := "/github.com/etcd-io/etcd/releases/download/" + l.v.Etcd + "/etcd-" + l.v.Etcd + "-linux-amd64.tar.gz"
	sum := l.files[etcd+".sha256"]
	delete(l.files, etcd)
	delete(l.files, etcd+".sha256")
	_, err := Build(ctx, l.options(out))
	if err == nil || !IsMissing(err) || !strings.Contains(err.Error(), "artifact etcd") || !strings.Contains(err.Error(), etcd) {
		t.Fatalf("missing etcd: %v", err)
	}
	after, _ := os.ReadFile(filepath.Join(out, ManifestName))
	if !bytes.Equal(before, after) {
		t.Error("a failed build changed the bundle")
	}
	// A file that does not match its published checksum is refused.
	l.files[etcd] = []byte("not what was published")
	l.files[etcd+".sha256"] = sum
	fresh := filepath.Join(t.TempDir(), "fresh")
	_, err = Build(ctx, l.options(fresh))
	if err == nil || !strings.Contains(err.Error(), "SHA-256 mismatch") {
		t.Fatalf("bad checksum: %v", err)
	}
	if entries, _ := os.ReadDir(filepath.Dir(fresh)); len(entries) != 0 {
		t.Errorf("a failed build left files: %v", entries)
	}
	// An archive without the member the bundle takes from it.
	l.files[etcd] = []byte("content of etcd " + strings.TrimPrefix(etcd, "/github.com/"))
	helm := "/get.helm.sh/helm-" + l.v.Helm + "-linux-amd64.tar.gz"
	good, goodSum := l.files[helm], l.files[helm+".sha256sum"]
	l.files[helm] = tarGz(t, map[string]string{"helm": "at the top"})
	hs := sha256.Sum256(l.files[helm])
	l.files[helm+".sha256sum"] = []byte(hex.EncodeToString(hs[:]) + "  " + path.Base(helm) + "\n")
	_, err = Build(ctx, l.options(fresh))
	if err == nil || !IsMissing(err) || !strings.Contains(err.Error(), "the archive has no linux-amd64/helm") {
		t.Fatalf("helm archive without linux-amd64/helm: %v", err)
	}
	if entries, _ := os.ReadDir(filepath.Dir(fresh)); len(entries) != 0 {
		t.Errorf("a failed build left files: %v", entries)
	}
	l.files[helm], l.files[helm+".sha256sum"] = good, goodSum
	// A missing image names itself.
	o := l.options(out)
	o.Registry = Registry{Host: strings.TrimPrefix(httptest.NewServer(quietRegistry()).URL, "http://"), Insecure: true}
	if _, err := Build(ctx, o); err == nil || !strings.Contains(err.Error(), "image registry.k8s.io/") {
		t.Fatalf("missing image: %v", err)
	}
	// An unrelated directory is never replaced.
	junk := t.TempDir()
	os.WriteFile(filepath.Join(junk, "precious"), []byte("x"), 0o600)
	if _, err := Build(ctx, l.options(junk)); err == nil || !strings.Contains(err.Error(), "refusing") {
		t.Fatalf("non-bundle directory: %v", err)
	}
}

func TestVersionsAndNames(t *testing.T) {
	if _, err := VersionsFor("v1.20.0"); err == nil || !strings.Contains(err.Error(), "v1.35 to v1.37") {
		t.Errorf("unknown minor: %v", err)
	}
	v, _ := VersionsFor("1.36.3")
	if v.Kube != "v1.36.3" || PauseImage(v) != "registry.k8s.io/pause:3.10.2" {
		t.Errorf("versions: %+v", v)
	}
	r := Registry{Host: "127.0.0.1:5000", Insecure: true}
	ref, err := r.Ref("registry.k8s.io/coredns/coredns:v1.12.1")
	if err != nil || ref.String() != "127.0.0.1:5000/coredns/coredns:v1.12.1" || ref.Context().Registry.Scheme() != "http" {
		t.Errorf("ref: %v %v", ref, err)
	}
	up, _ := Registry{}.Ref("registry.k8s.io/pause:3.10.2")
	if up.Context().RegistryStr() != "registry.k8s.io" {
		t.Errorf("upstream ref: %v", up)
	}
	_ = name.Insecure
	if s := (Source{}).URL(Artifacts(v)[0], ".sha256"); s != "https://dl.k8s.io/release/v1.36.3/bin/linux/amd64/kubeadm.sha256" {
		t.Errorf("real site URL: %s", s)
	}
}
