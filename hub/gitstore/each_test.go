package gitstore

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestSetEachWritesOneCommitWithTrailersAndSkipsConflicts(t *testing.T) {
	ctx := context.Background()
	s := openBulkSeed(t)
	before := s.Head()
	trailers := []Trailer{{"Outpost-Rollout", "web-abc"}, {"Outpost-Wave", "eu"}}
	res, err := s.SetEach(ctx, EachRequest{
		App:     "web",
		Targets: map[string]string{"prod-eu-1": "1.0-old", "prod-eu-2": "", "prod-us-1": "9.9", "lab": "2.0"},
		// prod-us-1 holds 1.2: someone changed it, it is left alone.
		Expect:   map[string]string{"prod-eu-1": "1.0", "prod-eu-2": "1.1", "prod-us-1": "2.0", "lab": ""},
		Subject:  "rollout web-abc: roll back web",
		Trailers: trailers,
	}, jane)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Committed || res.Previous != before {
		t.Fatalf("result %+v: want one commit on %s", res, before)
	}
	got := versions(t, s, "web")
	want := map[string]string{"prod-eu-1": "1.0-old", "prod-eu-2": "", "prod-us-1": "1.2", "canary-eu": "1.3", "dev-eu": "1.4", "lab": "2.0"}
	for c, v := range want {
		if got[c] != v {
			t.Errorf("%s: web at %q, want %q", c, got[c], v)
		}
	}
	if len(res.Conflicts) != 1 || res.Conflicts[0] != (EachConflict{Cluster: "prod-us-1", Expected: "2.0", Found: "1.2"}) {
		t.Errorf("conflicts = %+v", res.Conflicts)
	}
	if !slices.Equal(Trailers(res.Message), trailers) {
		t.Errorf("message %q: trailers %v, want %v", res.Message, Trailers(res.Message), trailers)
	}
	if !strings.Contains(res.Message, "prod-us-1: left at 1.2 (expected 2.0)") {
		t.Errorf("message does not name the conflict: %q", res.Message)
	}
	// The commit is found by its trailers, and only after the start revision.
	found, err := s.FindCommit(ctx, before, trailers[:1])
	if err != nil || found != res.Revision {
		t.Errorf("FindCommit = %q, %v; want %s", found, err, res.Revision)
	}
	if found, err := s.FindCommit(ctx, res.Revision, trailers[:1]); err != nil || found != "" {
		t.Errorf("FindCommit since the commit itself = %q, %v; want none", found, err)
	}
	if found, _ := s.FindCommit(ctx, before, []Trailer{{"Outpost-Rollout", "web-other"}}); found != "" {
		t.Errorf("FindCommit of another run = %q", found)
	}
	for name, tc := range map[string]struct {
		a, r string
		want bool
	}{
		"older is ancestor":    {before, res.Revision, true},
		"itself":               {res.Revision, res.Revision, true},
		"newer is no ancestor": {res.Revision, before, false},
	} {
		if ok, err := s.IsAncestor(ctx, tc.a, tc.r); err != nil || ok != tc.want {
			t.Errorf("%s: IsAncestor = %v, %v; want %v", name, ok, err, tc.want)
		}
	}
	var nf *NotFoundError
	if _, err := s.IsAncestor(ctx, strings.Repeat("ab", 20), res.Revision); !errors.As(err, &nf) {
		t.Errorf("IsAncestor of an unknown commit: %v, want a NotFoundError", err)
	}

	// The same request again changes nothing: clusters at their target are no
	// conflict (a retried write after a crash).
	again, err := s.SetEach(ctx, EachRequest{App: "web", Targets: map[string]string{"prod-eu-1": "1.0-old"},
		Expect: map[string]string{"prod-eu-1": "1.0"}, Subject: "again"}, jane)
	if err != nil || again.Committed || len(again.Conflicts) != 0 {
		t.Errorf("retry: %+v, %v; want no commit and no conflict", again, err)
	}
}

func TestSetEachRefusesBadInput(t *testing.T) {
	s := openBulkSeed(t)
	head := s.Head()
	cases := map[string]struct {
		req  EachRequest
		want string
	}{
		"no clusters":     {EachRequest{App: "web", Subject: "x"}, "names 0 clusters"},
		"bad app":         {EachRequest{App: "Web", Targets: map[string]string{"lab": "1"}, Subject: "x"}, "app"},
		"bad cluster":     {EachRequest{App: "web", Targets: map[string]string{"../x": "1"}, Subject: "x"}, "cluster"},
		"bad version":     {EachRequest{App: "web", Targets: map[string]string{"lab": "1 0"}, Subject: "x"}, "version"},
		"missing cluster": {EachRequest{App: "web", Targets: map[string]string{"nope": "1"}, Subject: "x"}, `cluster "nope" not found`},
		"no subject":      {EachRequest{App: "web", Targets: map[string]string{"lab": "1"}}, "subject"},
		"bad trailer":     {EachRequest{App: "web", Targets: map[string]string{"lab": "1"}, Subject: "x", Trailers: []Trailer{{"A", "b\nc"}}}, "trailer"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := s.SetEach(context.Background(), tc.req, jane)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want one containing %q", err, tc.want)
			}
			if s.Head() != head {
				t.Errorf("a refused write moved the head")
			}
		})
	}
}

func TestRolloutPolicyReadsTheFileAtARevision(t *testing.T) {
	ctx := context.Background()
	s := openBulkSeed(t)
	var nf *NotFoundError
	if _, _, err := s.RolloutPolicy(ctx, "", "web"); !errors.As(err, &nf) || nf.Kind != KindRolloutPolicy ||
		!strings.Contains(err.Error(), "rollouts/web.yaml") {
		t.Fatalf("missing policy: %v", err)
	}
	commitFiles(t, s, map[string]string{"rollouts/web.yaml": "waves:\n  - name: eu\n    selector: region=eu\n"})
	p, rev, err := s.RolloutPolicy(ctx, "", "web")
	if err != nil || len(p.Waves) != 1 || p.Waves[0].Selector != "region=eu" || rev != s.Head() {
		t.Fatalf("policy = %+v, %s, %v", p, rev, err)
	}
	commitFiles(t, s, map[string]string{"rollouts/web.yaml": "waves:\n  - name: eu\n    soak: forever\n"})
	var ce *ContentError
	if _, _, err := s.RolloutPolicy(ctx, "", "web"); !errors.As(err, &ce) || ce.File != "rollouts/web.yaml" ||
		!strings.Contains(err.Error(), "waves[0].soak") {
		t.Errorf("bad policy: %v", err)
	}
}
