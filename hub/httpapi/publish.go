package httpapi

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// HeadSource is the Git side a Publisher follows; *gitstore.Store is one.
type HeadSource interface {
	// Head returns the current revision.
	Head() string
	// Changed returns the clusters whose desired state differs between two revisions.
	Changed(ctx context.Context, oldRev, newRev string) ([]string, error)
}

// Notifier is the publishing side of the notifier; *notify.Notifier is one.
type Notifier interface {
	// Publish makes rev the desired revision of the named clusters.
	Publish(rev string, clusters []string)
	// PublishAll makes rev the desired revision of every cluster.
	PublishAll(rev string)
}

// changedTimeout bounds the computation of the clusters a head move changed.
const changedTimeout = 30 * time.Second

// Publisher keeps the notifier at the Git head: after every move of the head it
// publishes the new head to the clusters whose desired state changed since the last
// head it published. Moves are handled one at a time and always up to the current
// head, so publishes follow head order even when the moves' callbacks race, and a
// burst of moves costs one publish.
type Publisher struct {
	n   Notifier
	log *slog.Logger

	mu   sync.Mutex
	git  HeadSource
	last string // the head last published
}

// NewPublisher returns a Publisher for n; it publishes nothing before Start. log
// receives its warnings; nil discards them.
func NewPublisher(n Notifier, log *slog.Logger) *Publisher {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Publisher{n: n, log: log}
}

// Start publishes git's head to every cluster (what agents knew before the hub
// started is unknown) and follows git from now on.
func (p *Publisher) Start(git HeadSource) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.git = git
	p.last = git.Head()
	if p.last != "" {
		p.n.PublishAll(p.last)
	}
}

// HeadChanged is gitstore's Config.HeadChanged: it publishes the current head to the
// clusters changed since the last publish. The arguments only signal the move: the
// Publisher compares the head it last published with the current one.
func (p *Publisher) HeadChanged(_, _ string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.git == nil {
		return // not started: Start publishes the head to everyone
	}
	head := p.git.Head()
	if head == "" || head == p.last {
		return
	}
	if p.last == "" {
		p.n.PublishAll(head)
		p.last = head
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), changedTimeout)
	defer cancel()
	changed, err := p.git.Changed(ctx, p.last, head)
	if err != nil {
		// Waking every agent costs a fetch each; missing one would leave it behind.
		p.log.Warn("compute the clusters a commit changed; waking every agent", "old", p.last, "new", head, "err", err)
		p.n.PublishAll(head)
	} else {
		p.n.Publish(head, changed)
	}
	p.last = head
}
