package cluster

import (
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/metalk8s/metalk8s/pkg/addons"
	"github.com/metalk8s/metalk8s/pkg/bundle"
	"github.com/metalk8s/metalk8s/pkg/inventory"
)

// addonParams are metalk8s's own values for the addons of a release v.
func addonParams(v bundle.Versions, bundled bool) addons.Params {
	images := v.AddonImages()
	return addons.Params{KubeVersion: v.Kube, Bundled: bundled, MetricsServerImage: images.MetricsServer, HeadlampImage: images.Headlamp,
		TraefikImage: images.Traefik}
}

// AddonImages lists the images the enabled addons run (sorted, once
// each), their charts rendered for v with cl's variables
// (metalk8s_<addon>_enabled and _values), or with the defaults when cl is
// nil: what `bundle build` pulls beside bundle.Images(v) and `bundle
// verify` requires. Bad addon variables are FromInventory's errors.
func AddonImages(cl *inventory.Cluster, v bundle.Versions) ([]string, error) {
	var ads []*addons.Addon
	var err error
	if cl == nil {
		ads, err = addons.Defaults(addonParams(v, true))
	} else {
		ads, err = addons.FromInventory(cl, addonParams(v, true))
	}
	if err != nil {
		return nil, err
	}
	var objs []*unstructured.Unstructured
	for _, a := range ads {
		if a.Enabled {
			objs = append(objs, a.Objects...)
		}
	}
	return addons.Images(objs), nil
}
