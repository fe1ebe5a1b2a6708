package repo

import (
	"errors"
	"slices"
)

// The Parse functions are pure: they decode one file's bytes, validate what the
// file alone can tell, and name file (a repo-relative path used in errors), line
// and field in every error. Cross-file checks (does the app directory exist, do
// dependsOn names exist, cycles) are Load's.

// ParseClusterFile decodes clusters/<cluster>/cluster.yaml. An empty file is a
// cluster without labels or vars.
func ParseClusterFile(file string, data []byte) (*ClusterConfig, error) {
	root, err := parseRoot(file, data)
	if err != nil || root.n == nil {
		return &ClusterConfig{}, err
	}
	cfg := &ClusterConfig{}
	err = root.fields(func(key string, v node) (bool, error) {
		var err error
		switch key {
		case "labels":
			cfg.Labels, err = v.stringMap(checkLabel)
			if err == nil {
				err = checkLabelVarCollisions(v, cfg.Labels)
			}
		case "vars":
			cfg.Vars, err = v.stringMap(checkVar)
		default:
			return false, nil
		}
		return true, err
	})
	if err != nil {
		return nil, err
	}
	return cfg, nil
}

// checkLabelVarCollisions refuses two label keys that map to the same variable
// ("a.b" and "a-b" both give CLUSTER_LABEL_a_b).
func checkLabelVarCollisions(v node, labels map[string]string) error {
	keys := make([]string, 0, len(labels))
	for k := range labels {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	seen := map[string]string{}
	for _, k := range keys {
		name := LabelVar(k)
		if other, ok := seen[name]; ok {
			return v.errf("label keys %q and %q both map to variable %s", other, k, name)
		}
		seen[name] = k
	}
	return nil
}

// ParseAppsFile decodes clusters/<cluster>/apps.yaml. The file must hold an apps
// list (write "apps: []" for a cluster without apps: an empty or missing file is
// an error, so a lost file never reads as "prune everything").
func ParseAppsFile(file string, data []byte) (*AppsList, error) {
	root, err := parseRoot(file, data)
	if err != nil {
		return nil, err
	}
	if root.n == nil {
		return nil, errAt(file, 0, "", "file is empty; write \"apps: []\" for a cluster without apps")
	}
	list := &AppsList{}
	found := false
	err = root.fields(func(key string, v node) (bool, error) {
		switch key {
		case "apps":
			found = true
			return true, parseAppEntries(v, list)
		case "allowEmpty":
			var err error
			list.AllowEmpty, err = v.boolean(false)
			return true, err
		}
		return false, nil
	})
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, root.errf("missing field \"apps\"; write \"apps: []\" for a cluster without apps")
	}
	return list, nil
}

func parseAppEntries(v node, list *AppsList) error {
	if v.isNull() {
		return v.errf("must be a list; write \"apps: []\" for a cluster without apps")
	}
	if n := len(v.n.Content); n > MaxApps {
		return v.errf("lists %d apps, more than the limit of %d", n, MaxApps)
	}
	first := map[string]int{}
	list.Apps = []AppEntry{}
	return v.list(func(i int, item node) error {
		e, err := parseAppEntry(item)
		if err != nil {
			return err
		}
		if line, dup := first[e.Name]; dup {
			return item.child("name", item.n).errf("duplicate app %q (first listed at line %d)", e.Name, line)
		}
		first[e.Name] = e.line
		list.Apps = append(list.Apps, e)
		return nil
	})
}

func parseAppEntry(item node) (AppEntry, error) {
	e := AppEntry{line: item.n.Line}
	var hasName, hasVersion bool
	err := item.fields(func(key string, v node) (bool, error) {
		var err error
		switch key {
		case "name":
			hasName = true
			err = scalarChecked(v, &e.Name, ValidateName)
		case "version":
			hasVersion = true
			err = scalarChecked(v, &e.Version, ValidateVersion)
		case "vars":
			e.Vars, err = v.stringMap(checkVar)
		default:
			return false, nil
		}
		return true, err
	})
	switch {
	case err != nil:
		return e, err
	case !hasName:
		return e, item.child("name", item.n).errf("missing field")
	case !hasVersion:
		return e, item.child("version", item.n).errf("missing field (app %q)", e.Name)
	}
	return e, nil
}

// scalarChecked decodes a string into dst and validates it with check. The
// *Error names the field, so it says only the *InvalidError's reason, and wraps it.
func scalarChecked(v node, dst *string, check func(string) error) error {
	s, err := v.str()
	if err != nil {
		return err
	}
	if err := check(s); err != nil {
		msg := err.Error()
		if ie := (*InvalidError)(nil); errors.As(err, &ie) {
			msg = ie.Reason
		}
		e := v.errf("%s", msg)
		e.Err = err
		return e
	}
	*dst = s
	return nil
}

// ParseAppFile decodes apps/<app>/app.yaml and applies defaults; an empty file is
// all defaults.
func ParseAppFile(file string, data []byte) (*AppConfig, error) {
	cfg := DefaultAppConfig()
	root, err := parseRoot(file, data)
	if err != nil || root.n == nil {
		return &cfg, err
	}
	err = root.fields(func(key string, v node) (bool, error) {
		return appField(&cfg, key, v)
	})
	if err != nil {
		return nil, err
	}
	return &cfg, nil
}

// appField decodes one app.yaml field into cfg; false means unknown field.
func appField(cfg *AppConfig, key string, v node) (bool, error) {
	var err error
	switch key {
	case "namespace":
		err = scalarChecked(v, &cfg.Namespace, validateOptionalName)
	case "prune":
		cfg.Prune, err = v.boolean(DefaultPrune)
	case "drift":
		cfg.Drift, err = driftPolicy(v)
	case "healthTimeout":
		cfg.HealthTimeout.Duration, err = v.duration(DefaultHealthTimeout, MaxHealthTimeout)
	case "dependsOn":
		err = parseDependsOn(v, cfg)
	case "allowEmpty":
		cfg.AllowEmpty, err = v.boolean(false)
	case "force":
		cfg.Force, err = v.boolean(false)
	case "adopt":
		cfg.Adopt, err = v.boolean(false)
	case "substitute":
		cfg.Substitute, err = substituteMode(v)
	case "createNamespace":
		cfg.CreateNamespace, err = v.boolean(DefaultCreateNamespace)
	case "helm":
		cfg.Helm, err = parseHelm(v)
	default:
		return false, nil
	}
	return true, err
}

func driftPolicy(v node) (DriftPolicy, error) {
	s, err := v.str()
	if err != nil {
		return "", err
	}
	switch DriftPolicy(s) {
	case "":
		return DefaultDrift, nil
	case DriftReport, DriftCorrect:
		return DriftPolicy(s), nil
	}
	return "", v.errf("must be %q or %q, got %q", DriftReport, DriftCorrect, s)
}

func substituteMode(v node) (SubstituteMode, error) {
	s, err := v.str()
	if err != nil {
		return "", err
	}
	switch SubstituteMode(s) {
	case "":
		return DefaultSubstitute, nil
	case SubstituteStrict, SubstituteDefined, SubstituteOff:
		return SubstituteMode(s), nil
	}
	return "", v.errf("must be %q, %q or %q, got %q", SubstituteStrict, SubstituteDefined, SubstituteOff, s)
}

func parseDependsOn(v node, cfg *AppConfig) error {
	seen := map[string]bool{}
	return v.list(func(_ int, item node) error {
		var name string
		if err := scalarChecked(item, &name, ValidateName); err != nil {
			return err
		}
		if seen[name] {
			return item.errf("duplicate dependency %q", name)
		}
		seen[name] = true
		cfg.DependsOn = append(cfg.DependsOn, name)
		cfg.dependsOnLines = append(cfg.dependsOnLines, item.n.Line)
		return nil
	})
}

// parseRoot parses one document; the result's n is nil for an empty file.
func parseRoot(file string, data []byte) (node, error) {
	if len(data) > MaxFileSize {
		return node{}, errAt(file, 0, "", "file is %d bytes, more than the limit of %d", len(data), MaxFileSize)
	}
	n, err := parseDocument(file, data)
	if err != nil {
		return node{}, err
	}
	x := node{file: file, n: n}
	if n != nil && x.isNull() {
		x.n = nil // a document holding only "~" or a comment
	}
	return x, nil
}

// validateOptionalName accepts "" (unset) or a valid name.
func validateOptionalName(s string) error {
	if s == "" {
		return nil
	}
	return ValidateName(s)
}
