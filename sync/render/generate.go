package render

import (
	"os"
	"path/filepath"
	"strings"

	"sigs.k8s.io/kustomize/api/konfig"
	kustypes "sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"

	"github.com/outpost-gitops/outpost/sync/repo"
)

// findKustomization returns the path of dir's kustomization file, or "".
func findKustomization(fsys filesys.FileSystem, dir string) string {
	for _, name := range konfig.RecognizedKustomizationFileNames() {
		p := filepath.Join(dir, name)
		if fsys.Exists(p) && !fsys.IsDir(p) {
			return p
		}
	}
	return ""
}

// generateKustomization builds the kustomization of a plain app folder, the way
// fluxcd's kustomize.Generator does it, minus what does not fit Outpost:
//   - every *.yaml and *.yml file below dir is a resource, in lexical order,
//     except dir/app.yaml (Outpost's app config, not a manifest);
//   - a subdirectory holding a kustomization file is a resource as a whole and
//     is not descended into;
//   - entries whose name starts with '.' are skipped (.git, editor files).
//
// fluxcd's Generator parses each file as Kubernetes objects while it scans (and
// so fails on app.yaml) and has no size limit; here every read goes through the
// guarded FS when kustomize builds, so files are read once, with limits.
// It returns the resource list; an empty list means an empty app.
func generateKustomization(fsys filesys.FileSystem, dir string) ([]string, error) {
	var resources []string
	err := fsys.Walk(dir, func(path string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		if path == dir {
			return nil
		}
		if strings.HasPrefix(info.Name(), ".") {
			if info.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if info.IsDir() {
			if findKustomization(fsys, path) != "" {
				resources = append(resources, rel)
				return filepath.SkipDir
			}
			return nil
		}
		if isManifest(rel) {
			resources = append(resources, rel)
		}
		return nil
	})
	return resources, err
}

func isManifest(rel string) bool {
	if rel == repo.AppFile {
		return false
	}
	ext := filepath.Ext(rel)
	return ext == ".yaml" || ext == ".yml"
}

// kustomizationYAML renders a kustomization listing resources.
func kustomizationYAML(resources []string) ([]byte, error) {
	k := kustypes.Kustomization{
		TypeMeta:  kustypes.TypeMeta{APIVersion: kustypes.KustomizationVersion, Kind: kustypes.KustomizationKind},
		Resources: resources,
	}
	return yaml.Marshal(k)
}
