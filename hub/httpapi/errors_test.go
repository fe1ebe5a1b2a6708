package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	apiv1 "github.com/outpost-gitops/outpost/api/v1"
	"github.com/outpost-gitops/outpost/hub/gitstore"
	"github.com/outpost-gitops/outpost/hub/store"
	"github.com/outpost-gitops/outpost/sync/repo"
)

// errorWant is the response an error gets.
type errorWant struct {
	status  int
	code    apiv1.ErrorCode
	field   string
	message string // the whole message (for a sentinel, its end: the message is the whole chain's)
}

// contentPrefix starts the message of a 409 for the repository's content.
const contentPrefix = "the repository's content prevents the change: "

// TestErrorKindsMapToResponses pins the response of every kind of git store
// error: a Kind or Input added to gitstore without a row here fails, so a new
// kind cannot fall through to a status nobody chose.
func TestErrorKindsMapToResponses(t *testing.T) {
	notFound := map[gitstore.Kind]errorWant{
		gitstore.KindCluster:         {http.StatusNotFound, apiv1.CodeNotFound, "cluster", `cluster "x" not found`},
		gitstore.KindApp:             {http.StatusNotFound, apiv1.CodeNotFound, "app", `app "x" not found`},
		gitstore.KindRevision:        {http.StatusNotFound, apiv1.CodeNotFound, "", `revision "x" not found`},
		gitstore.KindPreviousVersion: {http.StatusNotFound, apiv1.CodeNotFound, "app", `previous version "x" not found`},
		gitstore.KindRolloutPolicy:   {http.StatusNotFound, apiv1.CodeNotFound, "app", `rollout policy "x" not found`},
	}
	// A request's inputs are 400s; the author (the admin token's identity),
	// Changed's revisions and the configuration keep the 409 they had.
	conflict := func(field string) errorWant {
		return errorWant{http.StatusConflict, apiv1.CodeConflict, field, contentPrefix + "bad"}
	}
	invalid := func(field string) errorWant {
		return errorWant{http.StatusBadRequest, apiv1.CodeInvalid, field, "bad"}
	}
	inputs := map[gitstore.Input]errorWant{
		gitstore.InputCluster:        invalid("cluster"),
		gitstore.InputApp:            invalid("app"),
		gitstore.InputVersion:        invalid("version"),
		gitstore.InputLabels:         invalid("labels"),
		gitstore.InputLimit:          invalid("limit"),
		gitstore.InputRevision:       invalid("revision"),
		gitstore.InputIfMatch:        invalid("If-Match"),
		gitstore.InputAction:         invalid("action"),
		gitstore.InputSelector:       invalid("selector"),
		gitstore.InputClusters:       invalid("clusters"),
		gitstore.InputVarsFrom:       invalid("varsFrom"),
		gitstore.InputOldRev:         conflict("oldRev"),
		gitstore.InputNewRev:         conflict("newRev"),
		gitstore.InputAuthorName:     conflict("author.name"),
		gitstore.InputAuthorEmail:    conflict("author.email"),
		gitstore.InputDir:            conflict("dir"),
		gitstore.InputURL:            conflict("url"),
		gitstore.InputBranch:         conflict("branch"),
		gitstore.InputSeed:           conflict("seed"),
		gitstore.InputCommitterName:  conflict("committer.name"),
		gitstore.InputCommitterEmail: conflict("committer.email"),
	}
	for _, k := range gitstore.Kinds() {
		if _, ok := notFound[k]; !ok {
			t.Errorf("gitstore.Kind %q has no row in notFound", k)
		}
	}
	if len(notFound) != len(gitstore.Kinds()) {
		t.Errorf("notFound has %d rows, gitstore.Kinds() lists %d", len(notFound), len(gitstore.Kinds()))
	}
	for _, in := range gitstore.Inputs() {
		if _, ok := inputs[in]; !ok {
			t.Errorf("gitstore.Input %q has no row in inputs", in)
		}
	}
	if len(inputs) != len(gitstore.Inputs()) {
		t.Errorf("inputs has %d rows, gitstore.Inputs() lists %d", len(inputs), len(gitstore.Inputs()))
	}

	cases := map[string]struct {
		err  error
		want errorWant
	}{
		"content": {&gitstore.ContentError{File: "clusters/prod/apps.yaml", Msg: "bad", Err: &repo.Error{File: "clusters/prod/apps.yaml", Msg: "x"}},
			errorWant{http.StatusConflict, apiv1.CodeConflict, "clusters/prod/apps.yaml", contentPrefix + "bad"}},
		"exists": {&gitstore.ExistsError{Kind: gitstore.KindCluster, Name: "x"},
			errorWant{http.StatusConflict, apiv1.CodeConflict, "name", `cluster "x" already exists`}},
		"stale": {fmt.Errorf("%w: revision r is not in the repository's history", gitstore.ErrStaleRevision),
			errorWant{http.StatusConflict, apiv1.CodeConflict, "If-Match", "stale revision: revision r is not in the repository's history"}},
		"push conflict": {gitstore.ErrPushConflict,
			errorWant{http.StatusServiceUnavailable, apiv1.CodeUnavailable, "", "remote kept changing while pushing"}},
		"registry conflict": {&store.ConflictError{Cluster: "x", Reason: "taken"},
			errorWant{http.StatusConflict, apiv1.CodeConflict, "name", (&store.ConflictError{Cluster: "x", Reason: "taken"}).Error()}},
		"registry not found": {store.ErrNotFound,
			errorWant{http.StatusNotFound, apiv1.CodeNotFound, "cluster", "not found"}},
		"unknown": {errors.New("disk on fire"),
			errorWant{http.StatusInternalServerError, apiv1.CodeInternal, "", "internal error"}},
	}
	for k, w := range notFound {
		cases["not found "+string(k)] = struct {
			err  error
			want errorWant
		}{&gitstore.NotFoundError{Kind: k, Name: "x"}, w}
	}
	for in, w := range inputs {
		cases["invalid "+string(in)] = struct {
			err  error
			want errorWant
		}{&gitstore.ValidationError{Field: in, Msg: "bad"}, w}
	}
	a := &API{log: slog.New(slog.DiscardHandler)}
	for name, tc := range cases {
		// Wrapped, as the store and the handlers return them, the error maps the same.
		for _, wrap := range []string{"", "%w", "set version: %w", "handler: %w"} {
			err := tc.err
			if wrap != "" {
				err = fmt.Errorf(wrap, err)
				if wrap == "handler: %w" {
					err = fmt.Errorf("set web on prod: %w", err)
				}
			}
			t.Run(name+"/"+wrap, func(t *testing.T) {
				w := httptest.NewRecorder()
				a.writeError(w, httptest.NewRequest(http.MethodPost, "/api/v1/x", nil), err)
				var got apiv1.ErrorResponse
				if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
					t.Fatalf("body %q: %v", w.Body, err)
				}
				if w.Code != tc.want.status || got.Code != tc.want.code || got.Field != tc.want.field || !messageOK(got.Message, tc.want.message, tc.err) {
					t.Errorf("%v: %d %+v, want %d %s field %q message %q", err, w.Code, got, tc.want.status, tc.want.code, tc.want.field, tc.want.message)
				}
				if tc.err == gitstore.ErrPushConflict && w.Header().Get("Retry-After") != "5" {
					t.Errorf("Retry-After = %q, want 5", w.Header().Get("Retry-After"))
				}
			})
		}
	}
}

// messageOK reports whether got is the message want for err: a sentinel's
// response says the whole chain, which ends with want; a typed error's is want.
func messageOK(got, want string, err error) bool {
	switch err {
	case gitstore.ErrPushConflict, store.ErrNotFound:
		return strings.HasSuffix(got, want)
	}
	if errors.Is(err, gitstore.ErrStaleRevision) {
		return strings.HasSuffix(got, want)
	}
	return got == want
}

// A name the git store rejects carries the *repo.InvalidError it came from, and
// still maps to a 400 naming the input.
func TestInvalidNameFromStoreMapsTo400(t *testing.T) {
	ie := repo.ValidateName("Web")
	err := fmt.Errorf("set version: %w", &gitstore.ValidationError{Field: gitstore.InputApp, Msg: "app " + ie.Error(), Err: ie})
	resp, _, internal := toResponse(err)
	if internal || resp.Code != apiv1.CodeInvalid || resp.Field != "app" || !strings.HasPrefix(resp.Message, `app name "Web" is not a valid name`) {
		t.Errorf("toResponse = %+v (internal %v), want 400 invalid on app", resp, internal)
	}
	var got *repo.InvalidError
	if !errors.As(err, &got) || got.Value != "Web" {
		t.Errorf("errors.As(*repo.InvalidError) = %v, want the rejected name", got)
	}
}
