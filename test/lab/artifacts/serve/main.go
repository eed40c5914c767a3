// Command artifacts-serve is the lab's stand-in for the upstream download
// sites and registry.k8s.io, on loopback only:
//
//   - an HTTP file server over the mirror directory built by build.sh, whose
//     first path element is the upstream host
//     (http://127.0.0.1:8480/dl.k8s.io/release/v1.34.4/bin/linux/amd64/kubeadm);
//     a request whose Host header names a mirrored site (an HTTP proxy
//     request, or curl --resolve) is served from that site's folder, so
//     http://dl.k8s.io/release/... works through it as well;
//   - an OCI distribution registry (go-containerregistry's pkg/registry)
//     whose blobs are read straight from the OCI image layout build.sh wrote
//     and whose tags are the upstream names minus the registry host
//     (registry.k8s.io/kube-apiserver:v1.34.4 -> 127.0.0.1:5000/kube-apiserver:v1.34.4).
//     Pushes work too; their manifests live in memory, their blobs in
//     -uploads.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// layered reads blobs from the image layout first, then from the upload
// folder, and writes new blobs to the upload folder only.
type layered struct{ ro, rw registry.BlobHandler }

func (l layered) Get(ctx context.Context, repo string, h v1.Hash) (io.ReadCloser, error) {
	if rc, err := l.ro.Get(ctx, repo, h); err == nil {
		return rc, nil
	}
	return l.rw.Get(ctx, repo, h)
}

func (l layered) Stat(ctx context.Context, repo string, h v1.Hash) (int64, error) {
	if n, err := l.ro.(registry.BlobStatHandler).Stat(ctx, repo, h); err == nil {
		return n, nil
	}
	return l.rw.(registry.BlobStatHandler).Stat(ctx, repo, h)
}

func (l layered) Put(ctx context.Context, repo string, h v1.Hash, rc io.ReadCloser) error {
	return l.rw.(registry.BlobPutHandler).Put(ctx, repo, h, rc)
}

// putManifest stores a manifest through the registry's own HTTP API,
// in-process.
func putManifest(reg http.Handler, repo, ref, mediaType string, body []byte) error {
	req := httptest.NewRequest(http.MethodPut, "/v2/"+repo+"/manifests/"+ref, bytes.NewReader(body))
	req.Header.Set("Content-Type", mediaType)
	rec := httptest.NewRecorder()
	reg.ServeHTTP(rec, req)
	if rec.Code != http.StatusCreated {
		return fmt.Errorf("PUT %s:%s: %d %s", repo, ref, rec.Code, rec.Body.String())
	}
	return nil
}

// preload tags every image of the layout's index.json, by the name in its
// io.containerd.image.name annotation, with the registry host removed.
func preload(reg http.Handler, oci string) (int, error) {
	blob := func(h v1.Hash) ([]byte, error) {
		return os.ReadFile(filepath.Join(oci, "blobs", h.Algorithm, h.Hex))
	}
	raw, err := os.ReadFile(filepath.Join(oci, "index.json"))
	if err != nil {
		return 0, err
	}
	var top v1.IndexManifest
	if err := json.Unmarshal(raw, &top); err != nil {
		return 0, err
	}
	n := 0
	for _, d := range top.Manifests {
		full := d.Annotations["io.containerd.image.name"]
		if full == "" {
			continue
		}
		ref, err := name.ParseReference(full)
		if err != nil {
			return n, err
		}
		repo := ref.Context().RepositoryStr()
		body, err := blob(d.Digest)
		if err != nil {
			return n, err
		}
		if d.MediaType.IsIndex() {
			var idx v1.IndexManifest
			if err := json.Unmarshal(body, &idx); err != nil {
				return n, err
			}
			for _, c := range idx.Manifests {
				cb, err := blob(c.Digest)
				if err != nil {
					return n, err
				}
				if err := putManifest(reg, repo, c.Digest.String(), string(c.MediaType), cb); err != nil {
					return n, err
				}
			}
		}
		if err := putManifest(reg, repo, ref.Identifier(), string(d.MediaType), body); err != nil {
			return n, err
		}
		log.Printf("registry: %s -> %s:%s (%s)", full, repo, ref.Identifier(), d.Digest.Hex[:12])
		n++
	}
	return n, nil
}

// mirrorHandler serves dir, choosing the site folder from the Host header
// when it names one, and from the first path element otherwise.
func mirrorHandler(dir string) http.Handler {
	files := http.FileServer(http.Dir(dir))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host := r.Host
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		if host != "" && net.ParseIP(host) == nil && host != "localhost" && !strings.ContainsAny(host, "/\\") {
			if fi, err := os.Stat(filepath.Join(dir, host)); err == nil && fi.IsDir() {
				r = r.Clone(r.Context())
				r.URL.Path = "/" + host + r.URL.Path
			}
		}
		files.ServeHTTP(w, r)
	})
}

type statusRecorder struct {
	http.ResponseWriter
	code int
	n    int64
}

func (s *statusRecorder) WriteHeader(c int) { s.code = c; s.ResponseWriter.WriteHeader(c) }
func (s *statusRecorder) Write(b []byte) (int, error) {
	n, err := s.ResponseWriter.Write(b)
	s.n += int64(n)
	return n, err
}

func logged(tag string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w, code: http.StatusOK}
		h.ServeHTTP(rec, r)
		log.Printf("%s %s %s%s %d %dB %s", tag, r.Method, r.Host, r.URL.RequestURI(), rec.code, rec.n, time.Since(start).Round(time.Millisecond))
	})
}

func listen(addr string) (net.Listener, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return nil, fmt.Errorf("%s: only loopback addresses are allowed", addr)
	}
	return net.Listen("tcp", addr)
}

func main() {
	mirror := flag.String("mirror", "", "mirror directory (empty: no file server)")
	httpAddr := flag.String("http", "127.0.0.1:8480", "file server address (loopback only)")
	oci := flag.String("oci", "", "OCI image layout to serve (empty: no registry)")
	regAddr := flag.String("registry", "127.0.0.1:5000", "registry address (loopback only)")
	uploads := flag.String("uploads", "", "folder for pushed blobs (default: a temporary folder)")
	quiet := flag.Bool("quiet", false, "do not log each request")
	flag.Parse()
	log.SetFlags(log.LstdFlags | log.Lmicroseconds)

	wrap := logged
	if *quiet {
		wrap = func(_ string, h http.Handler) http.Handler { return h }
	}
	errc := make(chan error, 2)
	var cleanup func()
	var servers []*http.Server
	serve := func(addr string, h http.Handler) {
		ln, err := listen(addr)
		if err != nil {
			log.Fatal(err)
		}
		s := &http.Server{Handler: h, ReadHeaderTimeout: 30 * time.Second}
		servers = append(servers, s)
		go func() { errc <- s.Serve(ln) }()
	}

	if *oci != "" {
		up := *uploads
		if up == "" {
			d, err := os.MkdirTemp("", "artifacts-registry-")
			if err != nil {
				log.Fatal(err)
			}
			cleanup = func() { os.RemoveAll(d) }
			up = d
		}
		if err := os.MkdirAll(up, 0o755); err != nil {
			log.Fatal(err)
		}
		reg := registry.New(
			registry.WithBlobHandler(layered{
				ro: registry.NewDiskBlobHandler(filepath.Join(*oci, "blobs")),
				rw: registry.NewDiskBlobHandler(up),
			}),
			registry.Logger(log.New(io.Discard, "", 0)),
		)
		n, err := preload(reg, *oci)
		if err != nil {
			log.Fatalf("registry: load %s: %v", *oci, err)
		}
		serve(*regAddr, wrap("registry", reg))
		log.Printf("registry: %d tags from %s on http://%s", n, *oci, *regAddr)
	}
	if *mirror != "" {
		if fi, err := os.Stat(*mirror); err != nil || !fi.IsDir() {
			log.Fatalf("mirror: %s is not a directory", *mirror)
		}
		serve(*httpAddr, wrap("mirror", mirrorHandler(*mirror)))
		log.Printf("mirror: %s on http://%s/", *mirror, *httpAddr)
	}
	if len(servers) == 0 {
		log.Fatal("nothing to serve: give -mirror and/or -oci")
	}

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	code := 0
	select {
	case s := <-sig:
		log.Printf("%s: shutting down", s)
	case err := <-errc:
		if !errors.Is(err, http.ErrServerClosed) {
			log.Printf("serve: %v", err)
			code = 1
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	for _, s := range servers {
		_ = s.Shutdown(ctx)
	}
	cancel()
	if cleanup != nil {
		cleanup()
	}
	os.Exit(code)
}
