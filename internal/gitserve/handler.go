package gitserve

import (
	"bufio"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/go-git/go-billy/v5/osfs"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/cache"
	"github.com/go-git/go-git/v5/plumbing/format/packfile"
	"github.com/go-git/go-git/v5/plumbing/format/pktline"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp/sideband"
	"github.com/go-git/go-git/v5/plumbing/storer"
	"github.com/go-git/go-git/v5/storage/filesystem"

	"github.com/outpost-gitops/outpost/internal/slots"
)

// Defaults of Config, in one place.
const (
	// DefaultMaxRequestBytes bounds an upload-pack request body after
	// decompression: enough for tens of thousands of haves.
	DefaultMaxRequestBytes = 8 << 20
	// DefaultMaxConcurrentPacks bounds the packs built at the same time.
	DefaultMaxConcurrentPacks = 4
	// DefaultMaxRequestsPerKey is Config.MaxRequestsPerKey when unset.
	DefaultMaxRequestsPerKey = 2
	// DefaultIdleWriteTimeout is Config.IdleWriteTimeout when unset.
	DefaultIdleWriteTimeout = 30 * time.Second
	// maxBufferedAnswer is how much of an answer is kept in memory; the rest is
	// spilled to a temporary file.
	maxBufferedAnswer = 32 << 20
	// DefaultRealm is the basic-auth realm of a 401 answer.
	DefaultRealm = "outpost"
	// DefaultMaxReachableWalk bounds the commits walked to check that a want
	// not at a ref's tip is reachable from one.
	DefaultMaxReachableWalk = 100000
	// packWindow is the delta window of the packs sent.
	packWindow = 10
	// agent is the agent capability value.
	agent = "outpost-gitserve/1"
)

// RefSource lists the references to advertise. hub/gitstore's Store is one:
// it advertises the head it knows, never a ref whose objects are not all
// written yet.
type RefSource interface {
	// Refs returns the references, HEAD as a symbolic reference among them.
	Refs(ctx context.Context) ([]*plumbing.Reference, error)
}

// Config configures a Handler.
type Config struct {
	// Dir is the repository to serve: a bare repository, or a .git directory.
	// Required.
	Dir string
	// Authorize decides whether a request may read the repository, e.g. by the
	// token in its basic-auth password or bearer header (see Token). Required;
	// use AllowAll deliberately to serve without authentication.
	Authorize func(r *http.Request) bool
	// Refs lists the references to advertise. Nil: read them from Dir on every
	// request.
	Refs RefSource
	// MaxRequestBytes bounds an upload-pack request body after decompression.
	// Default DefaultMaxRequestBytes.
	MaxRequestBytes int64
	// MaxConcurrentPacks bounds the packs built at the same time; more requests
	// wait. A slot is held while the answer is built, never while it is sent, so a slow
	// reader cannot keep one. Default DefaultMaxConcurrentPacks.
	MaxConcurrentPacks int
	// View names the cluster whose view a request is served (see WithView), or "" for
	// the whole repository. Nil: every request gets the whole repository.
	View func(r *http.Request) string
	// Key names the credential of a request, for MaxRequestsPerKey (e.g. the
	// cluster of an agent token). Nil: no per-key limit.
	Key func(r *http.Request) string
	// MaxRequestsPerKey bounds the upload-pack requests of one key in flight at once,
	// building or sending; more are answered 429. Default DefaultMaxRequestsPerKey.
	MaxRequestsPerKey int
	// IdleWriteTimeout cuts a client that has not taken the next chunk of an answer
	// for this long. Default DefaultIdleWriteTimeout.
	IdleWriteTimeout time.Duration
	// Realm is the basic-auth realm sent with a 401. Default DefaultRealm.
	Realm string
}

func (c Config) withDefaults() (Config, error) {
	if c.Dir == "" {
		return c, errors.New("gitserve: Dir is required")
	}
	if c.Authorize == nil {
		return c, errors.New("gitserve: Authorize is required (use AllowAll to serve without authentication)")
	}
	if c.MaxRequestBytes <= 0 {
		c.MaxRequestBytes = DefaultMaxRequestBytes
	}
	if c.MaxConcurrentPacks <= 0 {
		c.MaxConcurrentPacks = DefaultMaxConcurrentPacks
	}
	if c.MaxRequestsPerKey <= 0 {
		c.MaxRequestsPerKey = DefaultMaxRequestsPerKey
	}
	if c.IdleWriteTimeout <= 0 {
		c.IdleWriteTimeout = DefaultIdleWriteTimeout
	}
	if c.Realm == "" {
		c.Realm = DefaultRealm
	}
	return c, nil
}

// AllowAll authorizes every request.
func AllowAll(*http.Request) bool { return true }

// Token returns the credential of a request: the password of its basic
// authorization, or its bearer token.
func Token(r *http.Request) (string, bool) {
	if _, p, ok := r.BasicAuth(); ok {
		return p, p != ""
	}
	const prefix = "bearer "
	h := r.Header.Get("Authorization")
	if len(h) > len(prefix) && strings.EqualFold(h[:len(prefix)], prefix) {
		t := strings.TrimSpace(h[len(prefix):])
		return t, t != ""
	}
	return "", false
}

// Handler serves one repository over Git smart HTTP (protocol v0, stateless),
// read-only: GET <prefix>/info/refs?service=git-upload-pack and POST
// <prefix>/git-upload-pack, whatever the prefix. Pushes are refused with 403.
type Handler struct {
	cfg   Config
	log   *slog.Logger
	packs chan struct{} // semaphore of MaxConcurrentPacks
	keys  *slots.Slots  // upload-pack requests in flight per Config.Key
	views *viewCache    // objects of per-cluster views
}

// New returns a Handler. log receives one line per request at debug level
// (errors at warn); nil discards them.
func New(cfg Config, log *slog.Logger) (*Handler, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Handler{cfg: cfg, log: log, packs: make(chan struct{}, cfg.MaxConcurrentPacks), keys: slots.New(cfg.MaxRequestsPerKey), views: newViewCache()}, nil
}

// ServeHTTP routes by the end of the path, so the handler can be mounted under
// any prefix.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !h.cfg.Authorize(r) {
		w.Header().Set("WWW-Authenticate", `Basic realm="`+h.cfg.Realm+`", charset="UTF-8"`)
		http.Error(w, "authentication required", http.StatusUnauthorized)
		return
	}
	p := r.URL.Path
	switch {
	case strings.HasSuffix(p, "/info/refs"):
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			methodNotAllowed(w, "GET")
			return
		}
		switch r.URL.Query().Get("service") {
		case "git-upload-pack":
			h.advertise(w, r)
		case "git-receive-pack":
			refusePush(w)
		default:
			http.Error(w, "only the smart HTTP protocol is served (service=git-upload-pack)", http.StatusForbidden)
		}
	case strings.HasSuffix(p, "/git-upload-pack"):
		if r.Method != http.MethodPost {
			methodNotAllowed(w, "POST")
			return
		}
		h.uploadPack(w, r)
	case strings.HasSuffix(p, "/git-receive-pack"):
		refusePush(w)
	default:
		http.NotFound(w, r)
	}
}

func methodNotAllowed(w http.ResponseWriter, allow string) {
	w.Header().Set("Allow", allow)
	http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
}

func refusePush(w http.ResponseWriter) {
	http.Error(w, "this repository is read-only: change desired state through the Outpost hub", http.StatusForbidden)
}

// storage opens the repository for one request: go-git storages are not safe
// for concurrent use, and a fresh one sees packs written since.
func (h *Handler) storage() *filesystem.Storage {
	return filesystem.NewStorage(osfs.New(h.cfg.Dir), cache.NewObjectLRU(8*cache.MiByte))
}

// refs returns the references to advertise, HEAD first when it resolves.
func (h *Handler) refs(ctx context.Context, st *filesystem.Storage) (head *plumbing.Reference, refs []*plumbing.Reference, err error) {
	var all []*plumbing.Reference
	if h.cfg.Refs != nil {
		if all, err = h.cfg.Refs.Refs(ctx); err != nil {
			return nil, nil, err
		}
	} else {
		iter, err := st.IterReferences()
		if err != nil {
			return nil, nil, err
		}
		err = iter.ForEach(func(r *plumbing.Reference) error { all = append(all, r); return nil })
		if err != nil {
			return nil, nil, err
		}
		if r, err := st.Reference(plumbing.HEAD); err == nil {
			all = append(all, r)
		}
	}
	byName := map[plumbing.ReferenceName]*plumbing.Reference{}
	for _, r := range all {
		byName[r.Name()] = r
	}
	for _, r := range all {
		switch {
		case r.Name() == plumbing.HEAD && r.Type() == plumbing.SymbolicReference:
			head = r
		case r.Name() != plumbing.HEAD && r.Type() == plumbing.HashReference:
			refs = append(refs, r)
		}
	}
	slices.SortFunc(refs, func(a, b *plumbing.Reference) int { return strings.Compare(a.Name().String(), b.Name().String()) })
	return head, refs, nil
}

// tips returns what a request is served: HEAD, the references to advertise and the
// objects to read. For a request with a view (Config.View), every reference points at
// the view of its commit and the objects are the view's over the repository's.
func (h *Handler) tips(r *http.Request, st *filesystem.Storage) (*plumbing.Reference, []*plumbing.Reference, storer.EncodedObjectStorer, error) {
	head, refs, err := h.refs(r.Context(), st)
	if err != nil || h.cfg.View == nil {
		return head, refs, st, err
	}
	cluster := h.cfg.View(r)
	if cluster == "" {
		return head, refs, st, nil
	}
	viewed := make([]*plumbing.Reference, 0, len(refs))
	for _, ref := range refs {
		v, err := h.views.view(st, ref.Hash(), cluster)
		if err != nil {
			return nil, nil, nil, err
		}
		viewed = append(viewed, plumbing.NewHashReference(ref.Name(), v))
	}
	return head, viewed, &overlay{EncodedObjectStorer: st, views: h.views}, nil
}

// advertise answers info/refs for git-upload-pack.
func (h *Handler) advertise(w http.ResponseWriter, r *http.Request) {
	head, refs, _, err := h.tips(r, h.storage())
	if err != nil {
		h.log.Warn("list references", "err", err)
		http.Error(w, "cannot list references", http.StatusInternalServerError)
		return
	}
	caps := []string{"multi_ack", "multi_ack_detailed", "side-band", "side-band-64k", "ofs-delta",
		"shallow", "no-progress", "allow-tip-sha1-in-want", "allow-reachable-sha1-in-want"}
	var headHash plumbing.Hash
	if head != nil {
		for _, ref := range refs {
			if ref.Name() == head.Target() {
				headHash = ref.Hash()
				caps = append(caps, "symref=HEAD:"+head.Target().String())
			}
		}
	}
	caps = append(caps, "agent="+agent)
	w.Header().Set("Content-Type", "application/x-git-upload-pack-advertisement")
	w.Header().Set("Cache-Control", "no-cache")
	bw := bufio.NewWriter(w)
	e := pktline.NewEncoder(bw)
	lines := []string{}
	first := true
	line := func(hash plumbing.Hash, name string) {
		if first {
			lines = append(lines, hash.String()+" "+name+"\x00"+strings.Join(caps, " ")+"\n")
			first = false
			return
		}
		lines = append(lines, hash.String()+" "+name+"\n")
	}
	if !headHash.IsZero() {
		line(headHash, "HEAD")
	}
	for _, ref := range refs {
		line(ref.Hash(), ref.Name().String())
	}
	if first {
		line(plumbing.ZeroHash, "capabilities^{}")
	}
	err = firstErr(
		e.EncodeString("# service=git-upload-pack\n"), e.Flush(),
		e.EncodeString(lines...), e.Flush(), bw.Flush())
	if err != nil {
		h.log.Debug("write advertisement", "err", err)
		return
	}
	h.log.Debug("advertised references", "refs", len(refs), "remote", r.RemoteAddr)
}

func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// uploadPack answers one stateless upload-pack request: the shallow update (on
// deepen), the ACK/NAK lines, and when the client is done the pack.
func (h *Handler) uploadPack(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	if ct := r.Header.Get("Content-Type"); ct != "" && ct != "application/x-git-upload-pack-request" {
		http.Error(w, "unexpected content type "+ct, http.StatusUnsupportedMediaType)
		return
	}
	body, err := h.body(w, r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	req, err := parseUploadRequest(body)
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig), errors.Is(err, errTooBig):
		http.Error(w, "request too large", http.StatusRequestEntityTooLarge)
		return
	case err != nil:
		h.log.Debug("bad upload-pack request", "err", err, "remote", r.RemoteAddr)
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if h.cfg.Key != nil {
		key := h.cfg.Key(r)
		if !h.keys.Acquire(key) {
			http.Error(w, "too many fetches in flight with this credential; retry later", http.StatusTooManyRequests)
			return
		}
		defer h.keys.Release(key)
	}
	// Build the whole answer while holding a pack slot, release the slot, then send:
	// a slow reader holds only its own connection.
	answer := &spillBuffer{}
	defer answer.Close()
	select {
	case h.packs <- struct{}{}:
	case <-r.Context().Done():
		return
	}
	n, err := h.buildAnswer(r, req, answer)
	<-h.packs
	log := h.log.With("wants", len(req.wants), "haves", len(req.haves), "done", req.done,
		"depth", req.depth, "objects", n, "remote", r.RemoteAddr)
	if err != nil {
		var refused *refusedError
		if errors.As(err, &refused) {
			log.Debug("refused wants", "err", refused.err)
			writeErrLine(w, refused.err)
			return
		}
		log.Warn("upload-pack failed", "err", err)
		writeErrLine(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/x-git-upload-pack-result")
	w.Header().Set("Cache-Control", "no-cache")
	if err := h.send(w, answer); err != nil {
		log.Debug("upload-pack: sending failed", "err", err, "duration", time.Since(start))
		return
	}
	log.Debug("upload-pack", "bytes", answer.size, "duration", time.Since(start))
}

// refusedError is a request whose wants are refused: answered with an ERR line.
type refusedError struct{ err error }

func (e *refusedError) Error() string { return e.err.Error() }

// buildAnswer writes the answer to req (shallow update, ACK/NAK lines, the pack when
// the client is done) into out and returns the number of objects packed.
func (h *Handler) buildAnswer(r *http.Request, req *uploadRequest, out io.Writer) (int, error) {
	ctx := r.Context()
	_, refs, st, err := h.tips(r, h.storage())
	if err != nil {
		return 0, fmt.Errorf("list references: %w", err)
	}
	var recent []plumbing.Hash
	if _, ok := st.(*overlay); ok {
		// A view of the previous head stays wantable: the head may have moved on
		// between the client's ref listing and this request.
		recent = h.views.of(h.cfg.View(r))
	}
	if err := h.checkWants(ctx, st, refs, recent, req.wants); err != nil {
		return 0, &refusedError{err}
	}
	has := func(hash plumbing.Hash) bool { return st.HasEncodedObject(hash) == nil }
	if o, ok := st.(*overlay); ok {
		// A view acknowledges only view commits (the client's previous views): an ACK
		// of any other object would tell whether it exists, e.g. another cluster's file.
		has = func(hash plumbing.Hash) bool {
			obj := o.views.get(hash)
			return obj != nil && obj.Type() == plumbing.CommitObject
		}
	}
	lines, common := negotiate(req, has)
	var sel *selection
	if req.done || req.depth > 0 {
		if sel, err = selectObjects(ctx, st, req, common); err != nil {
			return 0, fmt.Errorf("cannot compute the pack: %w", err)
		}
	}
	bw := bufio.NewWriterSize(out, 64<<10)
	e := pktline.NewEncoder(bw)
	if req.depth > 0 {
		for _, s := range sel.shallow {
			err = firstErr(err, e.EncodeString("shallow "+s.String()+"\n"))
		}
		for _, s := range sel.unshallow {
			err = firstErr(err, e.EncodeString("unshallow "+s.String()+"\n"))
		}
		err = firstErr(err, e.Flush())
	}
	for _, l := range lines {
		err = firstErr(err, e.EncodeString(l+"\n"))
	}
	n := 0
	if err == nil && req.done {
		n = len(sel.objects)
		err = h.writePack(st, bw, req, sel.objects)
	}
	return n, firstErr(err, bw.Flush())
}

// send streams the built answer in chunks, giving the client IdleWriteTimeout for
// each: a client that stops reading is cut instead of holding the connection until
// the hub's Git timeout.
func (h *Handler) send(w http.ResponseWriter, answer *spillBuffer) error {
	rc := http.NewResponseController(w)
	rd, err := answer.Reader()
	if err != nil {
		return err
	}
	buf := make([]byte, 64<<10)
	for {
		k, rerr := rd.Read(buf)
		if k > 0 {
			if err := rc.SetWriteDeadline(time.Now().Add(h.cfg.IdleWriteTimeout)); err != nil && !errors.Is(err, http.ErrNotSupported) {
				return err
			}
			if _, err := w.Write(buf[:k]); err != nil {
				return err
			}
			if err := rc.Flush(); err != nil && !errors.Is(err, http.ErrNotSupported) {
				return err
			}
		}
		if errors.Is(rerr, io.EOF) {
			return nil
		}
		if rerr != nil {
			return rerr
		}
	}
}

// errTooBig is returned when a decompressed request passes MaxRequestBytes.
var errTooBig = errors.New("request too large")

// body returns the request body, decompressed, bounded by MaxRequestBytes.
func (h *Handler) body(w http.ResponseWriter, r *http.Request) (io.Reader, error) {
	limit := h.cfg.MaxRequestBytes
	var body io.Reader = http.MaxBytesReader(w, r.Body, limit)
	switch r.Header.Get("Content-Encoding") {
	case "", "identity":
	case "gzip", "x-gzip":
		zr, err := gzip.NewReader(body)
		if err != nil {
			return nil, fmt.Errorf("bad gzip body: %w", err)
		}
		body = &limitReader{r: zr, n: limit}
	default:
		return nil, fmt.Errorf("unsupported content encoding %q", r.Header.Get("Content-Encoding"))
	}
	return body, nil
}

// limitReader fails with errTooBig past n bytes (io.LimitReader would end
// silently, and a truncated request could read as a valid shorter one).
type limitReader struct {
	r io.Reader
	n int64
}

func (l *limitReader) Read(p []byte) (int, error) {
	if l.n <= 0 {
		return 0, errTooBig
	}
	if int64(len(p)) > l.n {
		p = p[:l.n]
	}
	n, err := l.r.Read(p)
	l.n -= int64(n)
	return n, err
}

// checkWants refuses a want that is not reachable from an advertised ref or one of
// the extra tips (the request's recent view commits).
func (h *Handler) checkWants(ctx context.Context, st storer.EncodedObjectStorer, refs []*plumbing.Reference, extra, wants []plumbing.Hash) error {
	tips := map[plumbing.Hash]bool{}
	for _, r := range refs {
		tips[r.Hash()] = true
	}
	for _, e := range extra {
		tips[e] = true
	}
	var pending []plumbing.Hash
	for _, w := range wants {
		if !tips[w] {
			pending = append(pending, w)
		}
	}
	if len(pending) == 0 {
		return nil
	}
	want := set(pending)
	seen := map[plumbing.Hash]bool{}
	stack := make([]plumbing.Hash, 0, len(tips))
	for t := range tips {
		stack = append(stack, t)
	}
	for n := 0; len(stack) > 0 && len(want) > 0 && n < DefaultMaxReachableWalk; n++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		c := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if seen[c] {
			continue
		}
		seen[c] = true
		commit, err := object.GetCommit(st, c)
		if err != nil {
			continue // a tag or another object at a ref
		}
		delete(want, c)
		delete(want, commit.TreeHash)
		stack = append(stack, commit.ParentHashes...)
	}
	for w := range want {
		return fmt.Errorf("upload-pack: not our ref %s", w)
	}
	return nil
}

// writePack writes the pack of objects, multiplexed on side-band 1 when the
// client asked for a side band.
func (h *Handler) writePack(st storer.EncodedObjectStorer, w io.Writer, req *uploadRequest, objects []plumbing.Hash) error {
	out := w
	var mux *sideband.Muxer
	switch {
	case hasCap(req.caps, "side-band-64k"):
		mux = sideband.NewMuxer(sideband.Sideband64k, w)
	case hasCap(req.caps, "side-band"):
		mux = sideband.NewMuxer(sideband.Sideband, w)
	}
	if mux != nil {
		out = mux
	}
	enc := packfile.NewEncoder(out, st, !hasCap(req.caps, "ofs-delta"))
	if _, err := enc.Encode(objects, packWindow); err != nil {
		if mux != nil {
			_, _ = mux.WriteChannel(sideband.ErrorMessage, []byte("error: "+err.Error()+"\n"))
		}
		return fmt.Errorf("encode pack: %w", err)
	}
	if mux != nil {
		return pktline.NewEncoder(w).Flush()
	}
	return nil
}

// writeErrLine answers with a protocol error line, which git prints as
// "remote error: ...".
func writeErrLine(w http.ResponseWriter, err error) {
	w.Header().Set("Content-Type", "application/x-git-upload-pack-result")
	w.Header().Set("Cache-Control", "no-cache")
	_ = pktline.NewEncoder(w).EncodeString("ERR " + err.Error() + "\n")
}
