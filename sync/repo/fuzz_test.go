package repo

import (
	"context"
	"testing"
	"testing/fstest"
)

// The fuzz targets run their seed corpus (testdata/fuzz/<Name>/ plus f.Add) as
// part of go test; run them for real with e.g.
//
//	go test ./sync/repo -run '^$' -fuzz FuzzLoadAppsFile -fuzztime 60s

// FuzzLoadAppsFile loads a cluster whose apps.yaml is the fuzz input. Load must
// not panic, must fail with a content error only, and on success must return
// names and versions that pass validation, without duplicates, in a valid order.
func FuzzLoadAppsFile(f *testing.F) {
	f.Add([]byte("apps:\n  - name: web\n    version: \"1.4.2\"\n    vars: { replicas: \"3\" }\n"))
	f.Add([]byte("apps: []\n"))
	f.Add([]byte(BillionLaughs("apps: []\n")))
	f.Fuzz(func(t *testing.T, data []byte) {
		m := baseRepo()
		m["clusters/prod/apps.yaml"] = &fstest.MapFile{Data: data}
		spec, err := Load(context.Background(), m, "prod")
		if err != nil {
			if !IsContentError(err) {
				t.Fatalf("non-content error %T: %v", err, err)
			}
			return
		}
		deps := map[string][]string{}
		for _, a := range spec.Apps {
			if _, dup := deps[a.Name]; dup {
				t.Fatalf("duplicate app %q accepted", a.Name)
			}
			if ValidateName(a.Name) != nil || ValidateVersion(a.Version) != nil {
				t.Fatalf("invalid app accepted: %+v", a)
			}
			for k, v := range a.Vars {
				if checkVar(k, v) != "" {
					t.Fatalf("invalid var accepted: %q=%q", k, v)
				}
			}
			deps[a.Name] = a.Config.DependsOn
		}
		checkOrder(t, deps, spec.Order)
	})
}

// FuzzParseAppFile decodes app.yaml; accepted configs must be within the contract.
func FuzzParseAppFile(f *testing.F) {
	f.Add([]byte("namespace: web\nprune: false\ndrift: correct\nhealthTimeout: 90s\ndependsOn: [db]\nallowEmpty: true\nforce: true\n"))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := ParseAppFile("apps/web/app.yaml", data)
		if err != nil {
			if !IsContentError(err) {
				t.Fatalf("non-content error %T: %v", err, err)
			}
			return
		}
		if cfg.Drift != DriftReport && cfg.Drift != DriftCorrect {
			t.Fatalf("drift %q accepted", cfg.Drift)
		}
		if d := cfg.HealthTimeout.Duration; d <= 0 || d > MaxHealthTimeout {
			t.Fatalf("healthTimeout %s accepted", d)
		}
		if validateOptionalName(cfg.Namespace) != nil {
			t.Fatalf("namespace %q accepted", cfg.Namespace)
		}
		if len(cfg.DependsOn) != len(cfg.dependsOnLines) {
			t.Fatalf("dependsOn lines out of step: %v %v", cfg.DependsOn, cfg.dependsOnLines)
		}
	})
}

// FuzzParseClusterFile decodes cluster.yaml; accepted labels must be valid
// Kubernetes labels whose variables do not collide.
func FuzzParseClusterFile(f *testing.F) {
	f.Add([]byte("labels:\n  env: prod\n  topology.kubernetes.io/region: eu\nvars:\n  domain: example.com\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := ParseClusterFile("clusters/prod/cluster.yaml", data)
		if err != nil {
			if !IsContentError(err) {
				t.Fatalf("non-content error %T: %v", err, err)
			}
			return
		}
		vars := map[string]bool{}
		for k, v := range cfg.Labels {
			if checkLabel(k, v) != "" || vars[LabelVar(k)] {
				t.Fatalf("label %q=%q accepted", k, v)
			}
			vars[LabelVar(k)] = true
		}
		for k, v := range cfg.Vars {
			if checkVar(k, v) != "" {
				t.Fatalf("var %q=%q accepted", k, v)
			}
		}
	})
}

// FuzzCheckYAMLExpansion must never panic and must finish quickly on any input.
func FuzzCheckYAMLExpansion(f *testing.F) {
	f.Add([]byte(BillionLaughs("")))
	f.Add([]byte("a: &a [1]\nb: *a\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		_ = CheckYAMLExpansion(data)
	})
}
