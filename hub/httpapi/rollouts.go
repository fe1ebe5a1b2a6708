package httpapi

import (
	"context"
	"errors"
	"net/http"

	apiv1 "github.com/outpost-gitops/outpost/api/v1"
	"github.com/outpost-gitops/outpost/hub/rollout"
	"github.com/outpost-gitops/outpost/hub/store"
)

// Rollouts runs rollouts; *rollout.Driver is one.
type Rollouts interface {
	// Start starts a run of app at version by a person.
	Start(ctx context.Context, app, version, by string) (*apiv1.Rollout, error)
	// Act applies a person's action to a run.
	Act(ctx context.Context, id string, action apiv1.RolloutAction, by string) (*apiv1.Rollout, error)
	// Override records a forced manual write on a run's cluster and pauses the run.
	Override(ctx context.Context, id, cluster, by string) (*apiv1.Rollout, error)
	// Holding returns the active run of app holding cluster, or nil.
	Holding(ctx context.Context, app, cluster string) (*apiv1.Rollout, error)
	// Get returns a run.
	Get(ctx context.Context, id string) (*apiv1.Rollout, error)
	// List returns runs, newest first.
	List(ctx context.Context, app string, active bool, limit int) ([]apiv1.Rollout, error)
	// Wake makes the driver look at the runs now (a report arrived).
	Wake()
}

// rolloutsEnabled answers 404 when the hub has no rollout driver.
func (a *API) rolloutsEnabled() error {
	if a.cfg.Rollouts == nil {
		return errNotFound("", "rollouts are not enabled on this hub")
	}
	return nil
}

// startRollout answers POST /api/v1/rollouts.
func (a *API) startRollout(w http.ResponseWriter, r *http.Request, c *caller) error {
	if err := a.rolloutsEnabled(); err != nil {
		return err
	}
	var req apiv1.StartRolloutRequest
	if err := decodeStrict(r, apiv1.MaxRequestBytes, &req); err != nil {
		return err
	}
	run, err := a.cfg.Rollouts.Start(r.Context(), req.App, req.Version, c.author.Name)
	if err != nil {
		return rolloutError(err)
	}
	a.log.Info("rollout started", "rollout", run.ID, "app", run.App, "version", run.Version, "by", c.author.Name)
	w.Header().Set("Location", apiv1.RolloutsPath+"/"+run.ID)
	writeJSON(w, http.StatusCreated, run)
	return nil
}

// listRollouts answers GET /api/v1/rollouts?app=&active=&limit=.
func (a *API) listRollouts(w http.ResponseWriter, r *http.Request, _ *caller) error {
	if err := a.rolloutsEnabled(); err != nil {
		return err
	}
	app, err := queryName(r, "app")
	if err != nil {
		return err
	}
	active, err := queryBool(r, "active")
	if err != nil {
		return err
	}
	limit, err := queryInt(r, "limit", store.DefaultRolloutLimit, 1, store.DefaultRolloutLimit)
	if err != nil {
		return err
	}
	runs, err := a.cfg.Rollouts.List(r.Context(), app, active, int(limit))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, apiv1.RolloutList{Rollouts: runs})
	return nil
}

// getRollout answers GET /api/v1/rollouts/{id}.
func (a *API) getRollout(w http.ResponseWriter, r *http.Request, _ *caller) error {
	if err := a.rolloutsEnabled(); err != nil {
		return err
	}
	id, err := pathRolloutID(r)
	if err != nil {
		return err
	}
	run, err := a.cfg.Rollouts.Get(r.Context(), id)
	if err != nil {
		return rolloutError(err)
	}
	writeJSON(w, http.StatusOK, run)
	return nil
}

// actOnRollout answers POST /api/v1/rollouts/{id}/{action}.
func (a *API) actOnRollout(w http.ResponseWriter, r *http.Request, c *caller) error {
	if err := a.rolloutsEnabled(); err != nil {
		return err
	}
	id, err := pathRolloutID(r)
	if err != nil {
		return err
	}
	action := apiv1.RolloutAction(r.PathValue("action"))
	if !action.Valid() {
		return errNotFound("action", "%q is not an action: pause, resume, approve, abort or rollback", string(action))
	}
	run, err := a.cfg.Rollouts.Act(r.Context(), id, action, c.author.Name)
	if err != nil {
		return rolloutError(err)
	}
	a.log.Info("rollout action", "rollout", id, "action", action, "state", run.State, "by", c.author.Name)
	writeJSON(w, http.StatusOK, run)
	return nil
}

func pathRolloutID(r *http.Request) (string, error) {
	id := r.PathValue("id")
	return id, checkRolloutID(id)
}

// checkRolloutID answers 400 naming id when it is not a rollout ID.
func checkRolloutID(id string) error {
	if !apiv1.IsRolloutID(id) {
		return errInvalid("id", "%q is not a rollout ID (lowercase letters, digits and dashes, at most %d)", id, apiv1.MaxRolloutIDLen)
	}
	return nil
}

// rolloutError maps the driver's errors to answers.
func rolloutError(err error) error {
	var (
		ae *rollout.ActionError
		se *rollout.StartError
		ar *store.ActiveRolloutError
	)
	switch {
	case errors.As(err, &ae):
		return newError(apiv1.CodeConflict, "state", "%s", ae.Error())
	case errors.As(err, &se):
		return newError(apiv1.CodeConflict, "app", "%s", se.Error())
	case errors.As(err, &ar):
		return newError(apiv1.CodeConflict, "app", "%s; abort it or wait for it to finish", ar.Error())
	case errors.Is(err, store.ErrNotFound):
		return errNotFound("id", "%v", err)
	}
	return err
}

// rolloutGuard refuses (409, naming the run) a manual write of app on clusters an
// active rollout holds, unless force is set; it returns the held clusters with
// their runs, to be marked overridden once a forced write is done.
func (a *API) rolloutGuard(ctx context.Context, app string, clusters []string, force bool) (map[string]string, error) {
	if a.cfg.Rollouts == nil {
		return nil, nil
	}
	held := map[string]string{}
	for _, cl := range clusters {
		run, err := a.cfg.Rollouts.Holding(ctx, app, cl)
		if err != nil {
			return nil, err
		}
		if run == nil {
			continue
		}
		if !force {
			return nil, newError(apiv1.CodeConflict, "cluster", "rollout %s of %s=%s is in progress on cluster %s (state %s): "+
				"pause, abort or wait for it, or force the write (force=true), which pauses the run", run.ID, run.App, run.Version, cl, run.State)
		}
		held[cl] = run.ID
	}
	return held, nil
}

// overridden marks the clusters of a forced write in their runs.
func (a *API) overridden(ctx context.Context, held map[string]string, by string) {
	for cl, id := range held {
		if _, err := a.cfg.Rollouts.Override(ctx, id, cl, by); err != nil {
			a.log.Warn("mark a forced write in its rollout", "rollout", id, "cluster", cl, "err", err)
		}
	}
}

// Rollouts returns at most limit runs of app ("" for all), only the active ones when
// active is set, newest first: the answer of GET /api/v1/rollouts?app=&active=&limit=,
// for the dashboard. Without a rollout driver
// it is an error wrapping an *apiv1.ErrorResponse with code not_found.
func (a *API) Rollouts(ctx context.Context, app string, active bool, limit int) (*apiv1.RolloutList, error) {
	if err := a.rolloutsEnabled(); err != nil {
		return nil, err
	}
	if app != "" {
		if err := apiv1.ValidateName("app", app); err != nil {
			return nil, errInvalid("app", "%v", err)
		}
	}
	if limit <= 0 || limit > store.DefaultRolloutLimit {
		limit = store.DefaultRolloutLimit
	}
	runs, err := a.cfg.Rollouts.List(ctx, app, active, limit)
	if err != nil {
		return nil, err
	}
	if runs == nil {
		runs = []apiv1.Rollout{}
	}
	return &apiv1.RolloutList{Rollouts: runs}, nil
}

// Rollout returns run id: the answer of GET /api/v1/rollouts/{id}, for the
// dashboard. An unknown run, or a hub without a rollout driver, is an error
// wrapping an *apiv1.ErrorResponse with code not_found; a malformed id one with
// code invalid.
func (a *API) Rollout(ctx context.Context, id string) (*apiv1.Rollout, error) {
	if err := a.rolloutsEnabled(); err != nil {
		return nil, err
	}
	if err := checkRolloutID(id); err != nil {
		return nil, err
	}
	run, err := a.cfg.Rollouts.Get(ctx, id)
	if err != nil {
		return nil, rolloutError(err)
	}
	return run, nil
}
