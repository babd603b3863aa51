// istio-render renders the Helm charts embedded in istio.io/istio/manifests
// with given values, through Helm's own engine, as the Sail Operator does.
// The simulated Sail Operator of mesh-run's sandbox runs it; it computes the
// values itself and only asks this program for what lives in Go: the charts,
// the profiles and the template engine.
//
//	istio-render version                          the istio.io/istio snapshot the charts come from
//	istio-render profile NAME                     spec.values of manifests/profiles/NAME.yaml, as JSON
//	istio-render chart DIR RELEASE NAMESPACE KUBE_VERSION < values.json
//	                                              the rendered objects, as YAML documents
//
// Errors (unknown profile, a template's `fail`, bad values) go to stderr with exit code 1.
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"runtime/debug"
	"strings"

	"k8s.io/apimachinery/pkg/version"
	"sigs.k8s.io/yaml"

	"istio.io/istio/manifests"
	"istio.io/istio/operator/pkg/helm"
	"istio.io/istio/operator/pkg/values"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func run(args []string) error {
	switch {
	case len(args) == 1 && args[0] == "version":
		fmt.Println(snapshot())
		return nil
	case len(args) == 2 && args[0] == "profile":
		return profile(args[1])
	case len(args) == 5 && args[0] == "chart":
		return chart(args[1], args[2], args[3], args[4])
	}
	return fmt.Errorf("usage: istio-render version | profile NAME | chart DIR RELEASE NAMESPACE KUBE_VERSION < values.json")
}

func snapshot() string {
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, dep := range info.Deps {
			if dep.Path == "istio.io/istio" {
				return dep.Version
			}
		}
	}
	return "unknown"
}

func profile(name string) error {
	data, err := fs.ReadFile(manifests.FS, "profiles/"+name+".yaml")
	if err != nil {
		return fmt.Errorf("unknown profile %q", name)
	}
	var operator struct {
		Spec struct {
			Values map[string]any `json:"values"`
		} `json:"spec"`
	}
	if err := yaml.Unmarshal(data, &operator); err != nil {
		return fmt.Errorf("profile %q: %v", name, err)
	}
	if operator.Spec.Values == nil {
		operator.Spec.Values = map[string]any{}
	}
	return json.NewEncoder(os.Stdout).Encode(operator.Spec.Values)
}

func chart(dir, release, namespace, kubeVersion string) error {
	input, err := io.ReadAll(os.Stdin)
	if err != nil {
		return err
	}
	vals := map[string]any{}
	if err := json.Unmarshal(input, &vals); err != nil {
		return fmt.Errorf("values: %v", err)
	}
	parts := strings.SplitN(strings.TrimPrefix(kubeVersion, "v"), ".", 3)
	if len(parts) < 2 {
		return fmt.Errorf("kube version %q: want MAJOR.MINOR[.PATCH]", kubeVersion)
	}
	kube := &version.Info{GitVersion: "v" + strings.TrimPrefix(kubeVersion, "v"), Major: parts[0], Minor: parts[1]}
	iop := values.Map{"spec": map[string]any{"values": vals}}
	objects, _, err := helm.Render(release, namespace, dir, iop, kube)
	if err != nil {
		return err
	}
	var out strings.Builder
	for _, object := range objects {
		out.WriteString("---\n")
		out.WriteString(object.Content)
		if !strings.HasSuffix(object.Content, "\n") {
			out.WriteString("\n")
		}
	}
	_, err = io.WriteString(os.Stdout, out.String())
	return err
}
