package store

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	apiv1 "github.com/outpost-gitops/outpost/api/v1"
)

// Store is the hub's status store.
type Store interface {
	Registry
	Statuses
	Rollouts
	// Close releases the store.
	Close() error
}

// Registry is the cluster registry.
type Registry interface {
	// RegisterCluster adds a cluster; a *ConflictError if its name is taken.
	RegisterCluster(ctx context.Context, c NewCluster) (Cluster, error)
	// DeleteCluster removes a cluster with its status, drift and events; ErrNotFound if
	// there is none.
	DeleteCluster(ctx context.Context, name string) error
	// GetCluster returns a cluster; ErrNotFound if there is none.
	GetCluster(ctx context.Context, name string) (Cluster, error)
	// ListClusters returns every cluster, sorted by name.
	ListClusters(ctx context.Context) ([]Cluster, error)
	// LookupToken returns the cluster whose token has this hash, or whose previous
	// token has it and is still in its grace period at now; ErrNotFound if none.
	LookupToken(ctx context.Context, hash TokenHash) (Cluster, error)
	// RotateToken gives a cluster the token whose hash is newHash; the previous token
	// stays valid until graceUntil (none when it is not after now). ErrNotFound if
	// the cluster is not registered.
	RotateToken(ctx context.Context, name string, newHash TokenHash, graceUntil time.Time) error
}

// Statuses holds the reported status, drift and events.
type Statuses interface {
	// ApplyReport stores a validated report received at receivedAt; ErrNotFound if its
	// cluster is not registered.
	ApplyReport(ctx context.Context, r *apiv1.StatusReport, receivedAt time.Time) (ReportResult, error)
	// Status returns the full status and drift of the apps matching q, sorted by
	// cluster and app.
	Status(ctx context.Context, q StatusQuery) ([]AppRecord, error)
	// AppSummaries returns the key columns of every app of a cluster ("" for all),
	// sorted by cluster and app: what the matrix needs, without decoding full status.
	AppSummaries(ctx context.Context, cluster string) ([]AppSummary, error)
	// ClusterSummaries counts the apps of every cluster that has some, by name.
	ClusterSummaries(ctx context.Context) (map[string]apiv1.ClusterSummary, error)
	// Events returns the events matching q, newest first.
	Events(ctx context.Context, q EventQuery) ([]apiv1.Event, error)
	// ForgetApps removes the status and drift of cluster's apps last reported before
	// staleBefore, or not in desired and last reported before undesiredBefore.
	ForgetApps(ctx context.Context, cluster string, desired map[string]bool, undesiredBefore, staleBefore time.Time) ([]string, error)
}

// ErrNotFound is returned (wrapped) when a cluster does not exist.
var ErrNotFound = errors.New("not found")

// ConflictError is returned when registering a cluster whose name is taken (or,
// astronomically unlikely, whose token hash is).
type ConflictError struct {
	// Cluster is the cluster being registered.
	Cluster string
	// Reason says what is taken.
	Reason string
}

// Error implements error.
func (e *ConflictError) Error() string {
	return fmt.Sprintf("register cluster %q: %s", e.Cluster, e.Reason)
}

// TokenHash is the SHA-256 hash of an agent token.
type TokenHash [sha256.Size]byte

// HashToken returns the hash of an agent token.
func HashToken(token string) TokenHash { return sha256.Sum256([]byte(token)) }

// String returns the hash in hex.
func (h TokenHash) String() string { return hex.EncodeToString(h[:]) }

// TokenPrefix starts every agent token, so a leaked one is recognisable.
const TokenPrefix = "opa_"

// NewToken returns a new random agent token (128 bits from crypto/rand) and its hash.
func NewToken() (token string, hash TokenHash) {
	token = TokenPrefix + rand.Text()
	return token, HashToken(token)
}

// NewCluster is a cluster to register.
type NewCluster struct {
	// Name is the cluster's name, a DNS-1123 label.
	Name string
	// Labels are the cluster's labels.
	Labels map[string]string
	// TokenHash is the hash of the cluster's agent token.
	TokenHash TokenHash
	// CreatedAt is the registration time; zero means now.
	CreatedAt time.Time
}

// Cluster is a registered cluster.
type Cluster struct {
	// Name is the cluster's name.
	Name string
	// Labels are the cluster's labels.
	Labels map[string]string
	// TokenHash is the hash of the cluster's agent token.
	TokenHash TokenHash
	// CreatedAt is when the cluster was registered.
	CreatedAt time.Time
	// LastReportAt is when its agent last reported; zero if never.
	LastReportAt time.Time
	// Agent is the agent of the last report.
	Agent apiv1.AgentInfo
}

// API returns the cluster as the API shows it, with its summary (never its token).
func (c Cluster) API(summary apiv1.ClusterSummary) apiv1.Cluster {
	return apiv1.Cluster{
		Name: c.Name, Labels: c.Labels, CreatedAt: c.CreatedAt,
		LastReportAt: c.LastReportAt, Agent: c.Agent, Summary: summary,
	}
}

// ReportResult says what ApplyReport did with each app of a report.
type ReportResult struct {
	// Stored lists the apps whose status was stored, in report order.
	Stored []string
	// Stale lists the apps ignored because the store holds a newer or equal generation.
	Stale []string
	// Events is the number of events recorded.
	Events int
}

// AppRecord is the stored state of one app on one cluster.
type AppRecord struct {
	// Cluster is the cluster.
	Cluster string
	// Status is the last accepted status.
	Status apiv1.AppStatus
	// Drift is the app's current drift, sorted by object.
	Drift []apiv1.Drift
	// ReceivedAt is when the hub received Status.
	ReceivedAt time.Time
}

// AppSummary is the key state of one app on one cluster.
type AppSummary struct {
	// Cluster is the cluster.
	Cluster string
	// App is the app.
	App string
	// Version is the reported version.
	Version string
	// Revision is the reported revision.
	Revision string
	// Phase is the reported phase.
	Phase apiv1.Phase
	// Health is the reported health.
	Health apiv1.HealthStatus
	// Drifted is the number of drifted objects.
	Drifted int
	// LastSyncedAt is when the app last synced successfully; zero if never.
	LastSyncedAt time.Time
	// ReceivedAt is when the hub received the status.
	ReceivedAt time.Time
}

// StatusQuery selects apps; empty fields match everything.
type StatusQuery struct {
	// Cluster selects one cluster.
	Cluster string
	// App selects one app.
	App string
}

// EventQuery selects events; empty fields match everything.
type EventQuery struct {
	// Cluster selects one cluster.
	Cluster string
	// App selects one app.
	App string
	// Type selects one type of event.
	Type apiv1.EventType
	// BeforeID selects events older than this ID (for paging); 0: from the newest.
	BeforeID int64
	// Limit is the most events returned; 0 means DefaultEventLimit, and it is capped
	// at apiv1.MaxHistoryLimit.
	Limit int
}
