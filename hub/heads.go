package hub

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/outpost-gitops/outpost/hub/gitstore"
	"github.com/outpost-gitops/outpost/hub/ha"
)

// headFanout keeps the replicas of a hub on one PostgreSQL store at one Git head:
// it publishes this replica's head moves on the bus and fetches the remote when
// another replica's head is not this one's. Without a bus (one hub) it does nothing.
type headFanout struct {
	bus *ha.Bus
	log *slog.Logger

	// publish holds the newest head to publish; refresh asks for a fetch.
	publish chan string
	refresh chan struct{}
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

func newHeadFanout(bus *ha.Bus, log *slog.Logger) *headFanout {
	return &headFanout{bus: bus, log: log, publish: make(chan string, 1), refresh: make(chan struct{}, 1)}
}

// moved is gitstore's HeadChanged: it queues rev for publishing, replacing an
// unpublished older head (only the newest matters).
func (h *headFanout) moved(rev string) {
	if h.bus == nil {
		return
	}
	for {
		select {
		case h.publish <- rev:
			return
		default:
		}
		select {
		case <-h.publish:
		default:
		}
	}
}

// start listens for the other replicas' heads until stop; it returns once listening,
// or after a few seconds if the database does not answer (the listener keeps trying).
func (h *headFanout) start(ctx context.Context, gs *gitstore.Store) error {
	if h.bus == nil {
		return nil
	}
	ctx, h.cancel = context.WithCancel(ctx)
	ready := make(chan struct{})
	h.wg.Go(func() {
		h.bus.Listen(ctx, func(rev string) {
			if rev != "" && rev == gs.Head() {
				return // this replica's own head, or one it fetched already
			}
			select {
			case h.refresh <- struct{}{}:
			default: // a fetch is queued already; it fetches the newest head
			}
		}, ready)
	})
	h.wg.Go(func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-h.refresh:
			}
			if old, cur, err := gs.Refresh(ctx); err != nil {
				if ctx.Err() == nil {
					h.log.Warn("fetch the GitOps repository after another replica's head moved", "err", err)
				}
			} else if old != cur {
				h.log.Info("fetched another replica's commits", "old", old, "new", cur)
			}
		}
	})
	h.wg.Go(func() {
		if err := h.bus.Connect(ctx); err != nil && ctx.Err() == nil {
			h.log.Warn("connect the head bus; connecting at the first head", "err", err)
		}
		for {
			select {
			case <-ctx.Done():
				return
			case rev := <-h.publish:
				pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
				if err := h.bus.Publish(pctx, rev); err != nil && ctx.Err() == nil {
					h.log.Warn("tell the other replicas of a new Git head; they fetch at their next poll", "head", rev, "err", err)
				}
				cancel()
			}
		}
	})
	select {
	case <-ready:
	case <-time.After(5 * time.Second):
		h.log.Warn("not listening for the other replicas' Git heads yet; still trying")
	case <-ctx.Done():
	}
	return nil
}

// stop ends the goroutines of start.
func (h *headFanout) stop() {
	if h.cancel != nil {
		h.cancel()
	}
	h.wg.Wait()
}
