package repo

import (
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Limits. Every file the loader reads is checked against MaxFileSize before it is
// parsed; the other limits bound what one cluster may declare.
const (
	// MaxFileSize is the largest file, in bytes, that Outpost reads from the repository
	// (1 MiB). It applies to cluster.yaml, apps.yaml, app.yaml and, in sync/render, to
	// every manifest and kustomization file.
	MaxFileSize = 1 << 20
	// MaxApps is the largest number of apps one apps.yaml may list.
	MaxApps = 1000
	// MaxVars is the largest number of entries in one vars or labels map.
	MaxVars = 256
	// MaxVarValueLen is the longest value, in bytes, of a variable or label.
	MaxVarValueLen = 4096
	// MaxVersionLen is the longest app version, in bytes.
	MaxVersionLen = 128
	// MaxHealthTimeout is the longest healthTimeout an app.yaml may set.
	MaxHealthTimeout = 24 * time.Hour
	// MaxYAMLNodes bounds the YAML nodes one file may expand to once its aliases
	// are resolved (see CheckYAMLExpansion): a billion-laughs file fails fast.
	MaxYAMLNodes = 1_000_000
)

// Defaults of app.yaml, in one place.
const (
	// DefaultPrune is app.yaml's prune when unset.
	DefaultPrune = true
	// DefaultDrift is app.yaml's drift when unset.
	DefaultDrift = DriftReport
	// DefaultHealthTimeout is app.yaml's healthTimeout when unset.
	DefaultHealthTimeout = 5 * time.Minute
	// DefaultSubstitute is app.yaml's substitute when unset.
	DefaultSubstitute = SubstituteStrict
	// DefaultCreateNamespace is app.yaml's createNamespace when unset.
	DefaultCreateNamespace = true
)

// File layout of the repository contract, relative to the repository root.
const (
	// ClustersDir holds one directory per cluster.
	ClustersDir = "clusters"
	// AppsDir holds one directory per app.
	AppsDir = "apps"
	// ClusterFile is the optional cluster file name inside clusters/<cluster>/.
	ClusterFile = "cluster.yaml"
	// AppsFile is the required desired-state file name inside clusters/<cluster>/.
	AppsFile = "apps.yaml"
	// AppFile is the optional app config file name inside apps/<app>/.
	AppFile = "app.yaml"
)

// DriftPolicy says what the agent does when a field Outpost owns is changed by
// someone else.
type DriftPolicy string

const (
	// DriftReport reports drift to the hub and leaves the object alone.
	DriftReport DriftPolicy = "report"
	// DriftCorrect reports drift and re-applies the desired state.
	DriftCorrect DriftPolicy = "correct"
)

// SubstituteMode says how post-build variable substitution treats a reference to a
// variable that is not defined.
type SubstituteMode string

const (
	// SubstituteStrict fails the render on ${NAME} of an undefined variable.
	SubstituteStrict SubstituteMode = "strict"
	// SubstituteDefined replaces only defined variables and leaves every reference to
	// an undefined one as written (shell scripts in ConfigMaps).
	SubstituteDefined SubstituteMode = "defined"
	// SubstituteOff does not substitute at all.
	SubstituteOff SubstituteMode = "off"
)

// ClusterConfig is the content of clusters/<cluster>/cluster.yaml.
type ClusterConfig struct {
	// Labels describe the cluster (env=prod, region=eu). Keys are Kubernetes label
	// keys; each is available to substitution as ${CLUSTER_LABEL_<key>} (see LabelVar).
	Labels map[string]string `json:"labels,omitempty"`
	// Vars are substitution variables for every app of the cluster.
	Vars map[string]string `json:"vars,omitempty"`
}

// AppEntry is one item of apps.yaml's apps list.
type AppEntry struct {
	// Name is the app, a directory apps/<name>/.
	Name string `json:"name"`
	// Version is the app's version, available as ${APP_VERSION}.
	Version string `json:"version"`
	// Vars are substitution variables for this app on this cluster; they override
	// the cluster's vars of the same name.
	Vars map[string]string `json:"vars,omitempty"`

	line int // line of the entry in apps.yaml, for errors found later
}

// AppsList is the content of clusters/<cluster>/apps.yaml.
type AppsList struct {
	// Apps in file order.
	Apps []AppEntry `json:"apps"`
	// AllowEmpty (top-level allowEmpty: true) lets an empty list remove every app of
	// the cluster. Without it, an empty list never prunes apps that are deployed: a
	// re-added cluster or a truncated edit must not empty a cluster.
	AllowEmpty bool `json:"allowEmpty,omitempty"`
}

// AppConfig is the content of apps/<app>/app.yaml, with defaults applied.
type AppConfig struct {
	// Namespace is given to namespaced objects that have none. Empty: no default.
	Namespace string `json:"namespace,omitempty"`
	// Prune deletes objects that left Git. Default true.
	Prune bool `json:"prune"`
	// Drift is the drift policy. Default report.
	Drift DriftPolicy `json:"drift"`
	// HealthTimeout is how long the app may take to become healthy. Default 5m.
	HealthTimeout metav1.Duration `json:"healthTimeout"`
	// DependsOn names apps of the same cluster that must be healthy first.
	DependsOn []string `json:"dependsOn,omitempty"`
	// AllowEmpty lets the app render to zero objects (and so prune everything).
	AllowEmpty bool `json:"allowEmpty"`
	// Force lets the apply step recreate objects whose immutable fields changed.
	Force bool `json:"force"`
	// Substitute is how variables are substituted. Default strict.
	Substitute SubstituteMode `json:"substitute"`
	// CreateNamespace lets the sync create Namespace (when set and not rendered) if it
	// does not exist; the Namespace then belongs to the app. Default true.
	CreateNamespace bool `json:"createNamespace"`

	dependsOnLines []int // line of each DependsOn item, for errors found later
	// Adopt lets the app take over existing objects that Outpost does not manage.
	// Default false: such an object is a conflict naming it. Objects of another app
	// are never taken over.
	Adopt bool `json:"adopt,omitempty"`
	// Helm, when set, makes the app a Helm chart rendered by Outpost (template, then
	// apply); the app folder's manifests and kustomization are then not used.
	Helm *HelmConfig `json:"helm,omitempty"`
}

// DefaultAppConfig returns the config of an app without app.yaml.
func DefaultAppConfig() AppConfig {
	return AppConfig{
		Prune:           DefaultPrune,
		Drift:           DefaultDrift,
		HealthTimeout:   metav1.Duration{Duration: DefaultHealthTimeout},
		Substitute:      DefaultSubstitute,
		CreateNamespace: DefaultCreateNamespace,
	}
}

// App is one app of a cluster, fully resolved: its apps.yaml entry and its app.yaml.
type App struct {
	// Name is the app's name.
	Name string `json:"name"`
	// Version is the version from apps.yaml.
	Version string `json:"version"`
	// Vars are the app's vars from apps.yaml.
	Vars map[string]string `json:"vars,omitempty"`
	// Path is the app's directory, repo-relative: "apps/<name>".
	Path string `json:"path"`
	// ConfigFile is "apps/<name>/app.yaml" when that file exists, else empty.
	ConfigFile string `json:"configFile,omitempty"`
	// Config is the app.yaml content with defaults applied.
	Config AppConfig `json:"config"`
}

// ClusterSpec is everything the repository says about one cluster.
type ClusterSpec struct {
	// Name is the cluster's name, the directory clusters/<name>/.
	Name string `json:"name"`
	// Labels from cluster.yaml.
	Labels map[string]string `json:"labels,omitempty"`
	// Vars from cluster.yaml.
	Vars map[string]string `json:"vars,omitempty"`
	// Apps in apps.yaml order.
	Apps []App `json:"apps"`
	// AllowEmpty is apps.yaml's allowEmpty: an empty Apps may prune every deployed app.
	AllowEmpty bool `json:"allowEmpty,omitempty"`
	// Order groups app names into dependency levels: every app's dependsOn are in
	// earlier levels; names within a level are sorted. See Order.
	Order [][]string `json:"order"`
	// Files are the repo-relative files that were read, sorted.
	Files []string `json:"files"`
}

// App returns the app with the given name, or nil.
func (s *ClusterSpec) App(name string) *App {
	for i := range s.Apps {
		if s.Apps[i].Name == name {
			return &s.Apps[i]
		}
	}
	return nil
}
