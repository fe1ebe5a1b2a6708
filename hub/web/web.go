package web

import (
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"path"
	"time"

	apiv1 "github.com/outpost-gitops/outpost/api/v1"
)

// Source is what the dashboard reads. The hub implements it over its status store and
// Git; the answers are the same as those of the REST API's GET /api/v1/matrix,
// GET /api/v1/clusters/{cluster}/status and GET /api/v1/events.
type Source interface {
	// Matrix returns every app × every cluster.
	Matrix(ctx context.Context) (*apiv1.Matrix, error)
	// ClusterStatus returns a cluster's status; for an unknown cluster an error that
	// is ErrNotFound (errors.Is) or an *apiv1.ErrorResponse with code not_found.
	ClusterStatus(ctx context.Context, cluster string) (*apiv1.ClusterStatus, error)
	// Events returns at most limit events, newest first, of one cluster or, when
	// cluster is empty, of all.
	Events(ctx context.Context, cluster string, limit int) (*apiv1.EventList, error)
}

// ErrNotFound is what a Source's ClusterStatus wraps for an unknown cluster.
var ErrNotFound = errors.New("not found")

// Options configure the dashboard. The zero value is usable; defaults are set in one
// place, withDefaults.
type Options struct {
	// Title names the hub in the header and the page titles. Default "Outpost".
	Title string
	// Logger receives errors of the Source and of streams. Default: discarded.
	Logger *slog.Logger
	// PollInterval is how often an open event stream asks the Source whether the page's
	// data changed. Default 1 s.
	PollInterval time.Duration
	// FallbackPoll is how often a page reloads its data when it cannot use the event
	// stream. Default 5 s.
	FallbackPoll time.Duration
	// KeepAlive is how often an idle event stream sends a comment, so proxies keep it
	// open. Default 15 s.
	KeepAlive time.Duration
	// StreamMaxAge ends an event stream after this long; the browser reopens it at
	// once, resuming from the last fingerprint. Default 5 min.
	StreamMaxAge time.Duration
	// EventLimit is the number of recent events a page shows. Default 20.
	EventLimit int
	// MaxDetailClusters bounds the clusters whose drift and error details the overview
	// fetches and shows (those needing attention, by name). Default 20.
	MaxDetailClusters int
	// ReadTimeout bounds the Source reads of one page, or of one poll of an event
	// stream. Default 15 s.
	ReadTimeout time.Duration
	// StaleAfter marks a cluster whose last report is older as not reporting.
	// Default 5 min.
	StaleAfter time.Duration
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

func (o Options) withDefaults() Options {
	if o.Title == "" {
		o.Title = "Outpost"
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.PollInterval <= 0 {
		o.PollInterval = time.Second
	}
	if o.FallbackPoll <= 0 {
		o.FallbackPoll = 5 * time.Second
	}
	if o.KeepAlive <= 0 {
		o.KeepAlive = 15 * time.Second
	}
	if o.StreamMaxAge <= 0 {
		o.StreamMaxAge = 5 * time.Minute
	}
	if o.EventLimit <= 0 {
		o.EventLimit = 20
	}
	if o.MaxDetailClusters <= 0 {
		o.MaxDetailClusters = 20
	}
	if o.ReadTimeout <= 0 {
		o.ReadTimeout = 15 * time.Second
	}
	if o.StaleAfter <= 0 {
		o.StaleAfter = 5 * time.Minute
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// contentSecurityPolicy allows nothing but the page's own scripts, styles, icon and
// event stream.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; " +
	"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// handler serves the dashboard.
type handler struct {
	src Source
	// rollouts is src when it is a RolloutSource; nil: no rollout pages.
	rollouts RolloutSource
	opts     Options
	pages    map[string]*template.Template
	assets   map[string]asset
	mux      *http.ServeMux
}

// asset is an embedded static file.
type asset struct {
	name        string
	contentType string
	data        []byte
	// hash versions the file's URL, so browsers may cache it for good.
	hash string
}

// New returns the dashboard's handler, to be mounted at "/" of the hub's server. It
// fails only if the embedded templates do not parse.
func New(src Source, opts Options) (http.Handler, error) {
	if src == nil {
		return nil, errors.New("web: nil Source")
	}
	h := &handler{src: src, opts: opts.withDefaults()}
	h.rollouts, _ = src.(RolloutSource)
	var err error
	if h.assets, err = loadAssets(); err != nil {
		return nil, err
	}
	if h.pages, err = h.parseTemplates(); err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", h.overview)
	mux.HandleFunc("GET /clusters/{cluster}", h.cluster)
	mux.HandleFunc("GET /clusters/{cluster}/history", h.history)
	mux.HandleFunc("GET /commits/{rev}", h.commit)
	mux.HandleFunc("GET /rollouts", h.rolloutsPage)
	mux.HandleFunc("GET /rollouts/{id}", h.rolloutPage)
	mux.HandleFunc("GET /events/stream", h.stream)
	mux.HandleFunc("GET /static/{file}", h.static)
	mux.HandleFunc("/", h.notFound)
	h.mux = mux
	return h, nil
}

// ServeHTTP sets the security headers every answer carries, then routes.
func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("Content-Security-Policy", contentSecurityPolicy)
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("Referrer-Policy", "no-referrer")
	h.mux.ServeHTTP(w, r)
}

func loadAssets() (map[string]asset, error) {
	types := map[string]string{
		".css": "text/css; charset=utf-8",
		".js":  "text/javascript; charset=utf-8",
		".svg": "image/svg+xml",
	}
	out := map[string]asset{}
	err := fs.WalkDir(staticFS, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := staticFS.ReadFile(p)
		if err != nil {
			return fmt.Errorf("web: read %s: %w", p, err)
		}
		ct, ok := types[path.Ext(p)]
		if !ok {
			return fmt.Errorf("web: %s: no content type for its extension", p)
		}
		sum := sha256.Sum256(data)
		name := path.Base(p)
		out[name] = asset{name: name, contentType: ct, data: data, hash: hex.EncodeToString(sum[:6])}
		return nil
	})
	return out, err
}

// assetURL returns the versioned URL of a static file.
func (h *handler) assetURL(name string) string {
	return "/static/" + name + "?v=" + h.assets[name].hash
}
