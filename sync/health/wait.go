package health

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/outpost-gitops/outpost/sync/object"
)

// Getter reads one live object. A missing object is reported as (nil, nil) or as an
// error for which apierrors.IsNotFound is true.
type Getter interface {
	Get(ctx context.Context, ref object.Ref) (*unstructured.Unstructured, error)
}

// WaitOptions configure Wait. The zero value is usable; defaults are set in withDefaults.
type WaitOptions struct {
	// Timeout is the app's health timeout: how long to wait for all objects to be
	// Current before the app is Timeout. Default 5m.
	Timeout time.Duration
	// Interval is the pause between two polls. Default 2s.
	Interval time.Duration
	// Logger receives one debug line per poll. Default: discard.
	Logger *slog.Logger
}

func (o WaitOptions) withDefaults() WaitOptions {
	if o.Timeout <= 0 {
		o.Timeout = 5 * time.Minute
	}
	if o.Interval <= 0 {
		o.Interval = 2 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// Check reads every object once and aggregates their health. A read error other than
// NotFound makes that object Unknown; Check fails only when ctx ends.
func Check(ctx context.Context, g Getter, refs []object.Ref) (AppHealth, error) {
	objects := make([]ObjectHealth, 0, len(refs))
	for _, ref := range refs {
		if err := ctx.Err(); err != nil {
			return AppHealth{}, fmt.Errorf("check health of %s: %w", ref, err)
		}
		obj, err := g.Get(ctx, ref)
		switch {
		case err == nil:
			objects = append(objects, Of(ref, obj))
		case apierrors.IsNotFound(err):
			objects = append(objects, Of(ref, nil))
		case ctx.Err() != nil:
			return AppHealth{}, fmt.Errorf("check health of %s: %w", ref, ctx.Err())
		default:
			objects = append(objects, ObjectHealth{Ref: ref, Status: Unknown, Message: fmt.Sprintf("get: %v", err)})
		}
	}
	return Aggregate(objects), nil
}

// Wait polls the objects until all are Current, any is Failed, or opts.Timeout passes;
// it then returns the app's health, Timeout in the last case. It fails only when ctx
// ends first, returning the last health seen with the error.
func Wait(ctx context.Context, g Getter, refs []object.Ref, opts WaitOptions) (AppHealth, error) {
	opts = opts.withDefaults()
	deadline := time.Now().Add(opts.Timeout)
	timer := time.NewTimer(0)
	defer timer.Stop()
	var last AppHealth
	for polls := 1; ; polls++ {
		select {
		case <-ctx.Done():
			return last, fmt.Errorf("wait for health of %d objects: %w", len(refs), ctx.Err())
		case <-timer.C:
		}
		app, err := Check(ctx, g, refs)
		if err != nil {
			return last, fmt.Errorf("wait for health: %w", err)
		}
		last = app
		opts.Logger.DebugContext(ctx, "health poll", "poll", polls, "status", app.Status, "message", app.Message)
		if app.Status == Current || app.Status == Failed {
			return app, nil
		}
		remaining := time.Until(deadline)
		if remaining <= 0 {
			return timedOut(app, opts.Timeout.String()), nil
		}
		timer.Reset(min(opts.Interval, remaining))
	}
}
