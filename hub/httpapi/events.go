package httpapi

import (
	"context"
	"math"
	"net/http"
	"strconv"

	apiv1 "github.com/outpost-gitops/outpost/api/v1"
	"github.com/outpost-gitops/outpost/hub/store"
)

// events answers GET /api/v1/events?cluster=&app=&type=&before=&limit=.
func (a *API) events(w http.ResponseWriter, r *http.Request, _ *caller) error {
	cluster, err := queryName(r, "cluster")
	if err != nil {
		return err
	}
	app, err := queryName(r, "app")
	if err != nil {
		return err
	}
	typ, err := singleQuery(r, "type")
	if err != nil {
		return err
	}
	switch apiv1.EventType(typ) {
	case "", apiv1.EventSync, apiv1.EventError, apiv1.EventHealth, apiv1.EventDrift:
	default:
		return errInvalid("type", "%s is not one of sync, error, health, drift", strconv.Quote(truncate(typ)))
	}
	before, err := queryInt(r, "before", 0, 1, math.MaxInt64)
	if err != nil {
		return err
	}
	limit, err := queryInt(r, "limit", store.DefaultEventLimit, 1, apiv1.MaxHistoryLimit)
	if err != nil {
		return err
	}
	if cluster != "" {
		if _, err := a.registered(r.Context(), cluster); err != nil {
			return err
		}
	}
	out, err := a.eventList(r.Context(), store.EventQuery{
		Cluster: cluster, App: app, Type: apiv1.EventType(typ), BeforeID: before, Limit: int(limit)})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// Events returns at most limit events (0: the default, at most
// apiv1.MaxHistoryLimit), newest first, of one cluster or, when cluster is empty, of
// all.
func (a *API) Events(ctx context.Context, cluster string, limit int) (*apiv1.EventList, error) {
	if cluster != "" {
		if err := apiv1.ValidateName("cluster", cluster); err != nil {
			return nil, err
		}
	}
	return a.eventList(ctx, store.EventQuery{Cluster: cluster, Limit: min(max(limit, 0), apiv1.MaxHistoryLimit)})
}

func (a *API) eventList(ctx context.Context, q store.EventQuery) (*apiv1.EventList, error) {
	evs, err := a.cfg.Store.Events(ctx, q)
	if err != nil {
		return nil, err
	}
	if evs == nil {
		evs = []apiv1.Event{}
	}
	return &apiv1.EventList{Events: evs}, nil
}

// contextUntil returns a context of parent that also ends when stop ends.
func contextUntil(parent, stop context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(parent)
	unhook := context.AfterFunc(stop, cancel)
	return ctx, func() {
		unhook()
		cancel()
	}
}
