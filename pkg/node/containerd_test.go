package node

import (
	"strings"
	"testing"

	"github.com/metalk8s/metalk8s/pkg/bundle"
)

// Captured from `ctr -n k8s.io images ls` on a lab VM after an import.
const ctrLs = `REF                                      TYPE                                                 DIGEST                                                                  SIZE      PLATFORMS   LABELS
registry.k8s.io/pause:3.10.1             application/vnd.docker.distribution.manifest.v2+json sha256:1b42ed51950009bcd2966f21e6d27172f6bd8f773cb9856539b6b2331c8f9062 335.7 KiB linux/amd64 io.cri-containerd.image=managed
sha256:45ed3c82ea4d57e26003ec8fefb4c3ddb0fe4900c976ee7c58f9eb7443bd1c6e application/vnd.docker.distribution.manifest.v2+json sha256:1b42ed51950009bcd2966f21e6d27172f6bd8f773cb9856539b6b2331c8f9062 335.7 KiB linux/amd64 io.cri-containerd.image=managed
registry.k8s.io/kube-proxy:v1.34.4       application/vnd.docker.distribution.manifest.v2+json sha256:ffa79cf4703fc0bea902799269b0112cde333f2bbb4f3978fb98ec005fcc4fbe 30.1 MiB  linux/amd64 io.cri-containerd.image=managed
sha256:8528911aa382d6c5203ed51ab4817b710170fd10b362b9fbe20629a95d8ffa97 application/vnd.docker.distribution.manifest.v2+json sha256:ffa79cf4703fc0bea902799269b0112cde333f2bbb4f3978fb98ec005fcc4fbe 30.1 MiB  linux/amd64 io.cri-containerd.image=managed
`

func TestImagesNotIn(t *testing.T) {
	images := []bundle.Image{
		{Name: "registry.k8s.io/pause:3.10.1", Digest: "sha256:45ed3c82ea4d57e26003ec8fefb4c3ddb0fe4900c976ee7c58f9eb7443bd1c6e"},
		// same tag, but the bundle holds another build of it
		{Name: "registry.k8s.io/kube-proxy:v1.34.4", Digest: "sha256:" + strings.Repeat("1", 64)},
		{Name: "registry.k8s.io/coredns/coredns:v1.12.1", Digest: "sha256:76c9d807d21797a723a6193a24d248d1f5d4e764171d5d987dbd5df3c286375a"},
	}
	got := imagesNotIn(ctrLs, images)
	if strings.Join(got, ",") != "registry.k8s.io/kube-proxy:v1.34.4,registry.k8s.io/coredns/coredns:v1.12.1" {
		t.Errorf("missing = %v", got)
	}
	if got := imagesNotIn("", images[:1]); len(got) != 1 {
		t.Errorf("nothing imported: %v", got)
	}
}

// In the form `crictl images -o json` gives on a lab VM (two of its
// images; the IDs are made up).
const crictlImages = `{
  "images": [
    {
      "id": "sha256:e3367f3e6872b0f9c4e1dba0ecb9e9ee93b6e0c4bf6f1ef4e7a8c7f6a2d9c3e1",
      "repoTags": [
        "registry.k8s.io/pause:3.10.2"
      ],
      "repoDigests": [],
      "size": "321218",
      "uid": null,
      "username": "",
      "spec": null,
      "pinned": true
    },
    {
      "id": "sha256:7bfb9df49711800000000000000000000000000000000000000000000000000",
      "repoTags": [
        "registry.k8s.io/kube-proxy:v1.36.3"
      ],
      "repoDigests": [],
      "size": "31550464",
      "uid": null,
      "username": "",
      "spec": null,
      "pinned": false
    }
  ]
}`

func TestImagesNotInCRI(t *testing.T) {
	images := []bundle.Image{
		{Name: "registry.k8s.io/pause:3.10.2", Digest: "sha256:e3367f3e6872b0f9c4e1dba0ecb9e9ee93b6e0c4bf6f1ef4e7a8c7f6a2d9c3e1"},
		// same tag, another build of it
		{Name: "registry.k8s.io/kube-proxy:v1.36.3", Digest: "sha256:" + strings.Repeat("1", 64)},
		{Name: "registry.k8s.io/coredns/coredns:v1.14.2", Digest: "sha256:" + strings.Repeat("2", 64)},
	}
	got, ok := imagesNotInCRI([]byte(crictlImages), images)
	if !ok || strings.Join(got, ",") != "registry.k8s.io/kube-proxy:v1.36.3,registry.k8s.io/coredns/coredns:v1.14.2" {
		t.Errorf("missing = %v (%v)", got, ok)
	}
	if got, ok := imagesNotInCRI([]byte(`{"images": []}`), images[:1]); !ok || len(got) != 1 {
		t.Errorf("nothing imported: %v %v", got, ok)
	}
	for _, out := range []string{"", "FATA[0000] connect: connection refused", `{"other": 1}`} {
		if _, ok := imagesNotInCRI([]byte(out), images); ok {
			t.Errorf("%q read as crictl's answer", out)
		}
	}
}
