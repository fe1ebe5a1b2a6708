package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"mime"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"

	apiv1 "github.com/outpost-gitops/outpost/api/v1"
	"github.com/outpost-gitops/outpost/hub/gitstore"
)

// bulk answers POST /api/v1/apps/{app}/bulk: one action on the app over every
// selected cluster, as one commit.
func (a *API) bulk(w http.ResponseWriter, r *http.Request, c *caller) error {
	app, err := pathName(r, "app")
	if err != nil {
		return err
	}
	header, err := ifMatch(r)
	if err != nil {
		return err
	}
	var req apiv1.BulkRequest
	if err := decodeStrict(r, apiv1.MaxRequestBytes, &req); err != nil {
		return err
	}
	rev := req.IfMatch
	switch {
	case rev == "":
		rev = header
	case header != "" && !strings.EqualFold(header, rev):
		return errInvalid("ifMatch", "the body's ifMatch %s and the If-Match header %s differ", rev, header)
	}
	force, err := queryBool(r, "force")
	if err != nil {
		return err
	}
	greq := gitstore.BulkRequest{
		Action: gitstore.BulkAction(req.Action), App: app, Version: req.Version,
		Selector: req.Selector, Clusters: req.Clusters, VarsFrom: req.VarsFrom, DryRun: req.DryRun, IfMatch: rev,
	}
	held, err := a.bulkGuard(r, greq, force, c)
	if err != nil {
		return err
	}
	res, err := a.cfg.Git.Bulk(r.Context(), greq, c.author)
	if err != nil {
		return err
	}
	if res.Committed {
		a.overridden(r.Context(), held, c.author.Name)
		a.metrics.committed(r.Context(), "bulk-"+string(req.Action))
		a.log.Info("desired state changed", "message", firstLine(res.Message), "clusters", len(res.Changes),
			"revision", res.Revision, "by", c.author.Name)
	}
	out := apiv1.BulkResult{App: app, Action: req.Action, DryRun: res.DryRun, Committed: res.Committed,
		Message: res.Message, Revision: res.Revision, Changes: make([]apiv1.BulkChange, 0, len(res.Changes)),
		PreviewRevision: res.Preview}
	for _, ch := range res.Changes {
		out.Changes = append(out.Changes, apiv1.BulkChange{Cluster: ch.Cluster, PreviousVersion: ch.Before,
			Version: ch.After, Changed: ch.Changed})
	}
	setETag(w, res.Revision)
	writeJSON(w, http.StatusOK, out)
	return nil
}

// decodeStrict is decodeBody refusing unknown fields: a misspelt field of a write
// that reaches many clusters (a "dryrun": true that is ignored) must not pass.
func decodeStrict(r *http.Request, limit int64, v apiv1.Validator) error {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
			return newError(apiv1.CodeUnsupportedMediaType, "Content-Type", "%s is not application/json", strconv.Quote(truncate(ct)))
		}
	}
	if r.ContentLength > limit {
		return &apiv1.TooLargeError{Limit: limit}
	}
	data, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		return err
	}
	if int64(len(data)) > limit {
		return &apiv1.TooLargeError{Limit: limit}
	}
	// encoding/json matches field names case-insensitively ("dryrun" would set
	// DryRun): check the top-level names exactly first.
	var fields map[string]json.RawMessage
	if json.Unmarshal(data, &fields) == nil {
		known := jsonNames(reflect.TypeOf(v).Elem())
		for _, k := range slices.Sorted(maps.Keys(fields)) {
			if !known[k] {
				return &apiv1.DecodeError{Field: k, Err: fmt.Errorf("unknown field %q", k)}
			}
		}
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) {
			return &apiv1.DecodeError{Field: typeErr.Field, Err: err}
		}
		if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
			return &apiv1.DecodeError{Field: strings.Trim(name, `"`), Err: err}
		}
		return &apiv1.DecodeError{Err: err}
	}
	if _, err := dec.Token(); err != io.EOF {
		return &apiv1.DecodeError{Err: errors.New("trailing data after the JSON document")}
	}
	return v.Validate()
}

// jsonNames returns the JSON names of a struct type's fields.
func jsonNames(t reflect.Type) map[string]bool {
	out := map[string]bool{}
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		if name != "" && name != "-" {
			out[name] = true
		}
	}
	return out
}

// firstLine is s up to its first newline.
func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

// bulkGuard applies rolloutGuard to the clusters a bulk write would change: when
// the app has an active rollout, a dry run of the write names them.
func (a *API) bulkGuard(r *http.Request, req gitstore.BulkRequest, force bool, c *caller) (map[string]string, error) {
	if a.cfg.Rollouts == nil || req.DryRun {
		return nil, nil
	}
	runs, err := a.cfg.Rollouts.List(r.Context(), req.App, true, 1)
	if err != nil || len(runs) == 0 {
		return nil, err
	}
	dry := req
	dry.DryRun = true
	plan, err := a.cfg.Git.Bulk(r.Context(), dry, c.author)
	if err != nil {
		return nil, err
	}
	var changed []string
	for _, ch := range plan.Changes {
		if ch.Changed {
			changed = append(changed, ch.Cluster)
		}
	}
	return a.rolloutGuard(r.Context(), req.App, changed, force)
}
