package gittest

import (
	"compress/gzip"
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/mail"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/format/packfile"
	"github.com/go-git/go-git/v5/plumbing/format/pktline"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp"

	"github.com/outpost-gitops/outpost/internal/gitobj"
	"github.com/outpost-gitops/outpost/internal/gitserve"
)

// Deleted, as the content of a file in Commit, removes the file.
const Deleted = "\x00gittest:deleted\x00"

// DefaultAuthor is the author of commits made with an empty author.
const DefaultAuthor = "Test Person <person@example.com>"

// Stats counts the requests a Server answered.
type Stats struct {
	// Advertisements counts info/refs requests for git-upload-pack (fetch, clone).
	Advertisements int64 `json:"advertisements"`
	// UploadPacks counts git-upload-pack POSTs.
	UploadPacks int64 `json:"uploadPacks"`
	// ReceivePacks counts git-receive-pack POSTs (pushes).
	ReceivePacks int64 `json:"receivePacks"`
}

// Option configures New.
type Option func(*Server)

// WithToken requires token on every request, as the basic-auth password (any
// user name) or as a bearer token.
func WithToken(token string) Option { return func(s *Server) { s.token = token } }

// WithBranch names the default branch (default "main").
func WithBranch(name string) Option {
	return func(s *Server) { s.branch = plumbing.NewBranchReferenceName(name) }
}

// WithListenAddr serves on addr ("host:port", port 0 for a free one) instead of a
// free loopback port, e.g. on a Docker network's gateway address so that pods in kind
// clusters can fetch; URL then names that host.
func WithListenAddr(addr string) Option { return func(s *Server) { s.listen = addr } }

// WithLogger sends the server's log lines (gitserve's, at debug level) to log.
func WithLogger(log *slog.Logger) Option { return func(s *Server) { s.log = log } }

// Server is a Git server for tests: a bare repository in a temporary
// directory, served over smart HTTP on a loopback port (or WithListenAddr's). Fetches go through
// internal/gitserve (what agents meet in production); pushes are accepted with a
// compare-and-swap of each ref, as a real Git server does, so push races are
// real.
type Server struct {
	t      testing.TB
	dir    string
	branch plumbing.ReferenceName
	token  string
	log    *slog.Logger
	listen string // the address New listens on

	mu   sync.Mutex // guards repo: refs and writes
	repo *git.Repository

	handler http.Handler
	addr    string
	srvMu   sync.Mutex // guards srv
	srv     *http.Server

	advertisements, uploadPacks, receivePacks atomic.Int64
}

// New starts a Server with an empty repository (HEAD pointing to the unborn
// default branch); Commit adds content. It stops when the test ends.
func New(t testing.TB, opts ...Option) *Server {
	t.Helper()
	s := &Server{t: t, dir: t.TempDir(), branch: plumbing.NewBranchReferenceName("main"), listen: "127.0.0.1:0"}
	for _, o := range opts {
		o(s)
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	repo, err := git.PlainInitWithOptions(s.dir, &git.PlainInitOptions{
		Bare: true, InitOptions: git.InitOptions{DefaultBranch: s.branch}})
	if err != nil {
		t.Fatalf("gittest: init repository: %v", err)
	}
	s.repo = repo
	serve, err := gitserve.New(gitserve.Config{Dir: s.dir, Authorize: s.authorize, Refs: s}, s.log)
	if err != nil {
		t.Fatalf("gittest: %v", err)
	}
	s.handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.HasSuffix(r.URL.Path, "/info/refs") && r.URL.Query().Get("service") == "git-receive-pack":
			if s.authorizeOrChallenge(w, r) {
				s.advertiseReceive(w)
			}
		case strings.HasSuffix(r.URL.Path, "/git-receive-pack") && r.Method == http.MethodPost:
			if s.authorizeOrChallenge(w, r) {
				s.receivePacks.Add(1)
				s.receivePack(w, r)
			}
		default:
			if strings.HasSuffix(r.URL.Path, "/info/refs") {
				s.advertisements.Add(1)
			} else if strings.HasSuffix(r.URL.Path, "/git-upload-pack") {
				s.uploadPacks.Add(1)
			}
			serve.ServeHTTP(w, r)
		}
	})
	lis, err := net.Listen("tcp", s.listen)
	if err != nil {
		t.Fatalf("gittest: listen on %s: %v", s.listen, err)
	}
	s.addr = lis.Addr().String()
	s.serve(lis)
	t.Cleanup(s.Stop)
	return s
}

// URL returns the repository's URL, without credentials.
func (s *Server) URL() string { return "http://" + s.addr + "/outpost.git" }

// Dir returns the bare repository's directory.
func (s *Server) Dir() string { return s.dir }

// Token returns the token New was given, if any.
func (s *Server) Token() string { return s.token }

// Branch returns the default branch's full name.
func (s *Server) Branch() plumbing.ReferenceName { return s.branch }

// Stats returns the request counts so far.
func (s *Server) Stats() Stats {
	return Stats{Advertisements: s.advertisements.Load(), UploadPacks: s.uploadPacks.Load(), ReceivePacks: s.receivePacks.Load()}
}

// Stop stops serving, closing open connections; the repository stays. Stop
// on a stopped server does nothing.
func (s *Server) Stop() {
	s.srvMu.Lock()
	defer s.srvMu.Unlock()
	if s.srv != nil {
		_ = s.srv.Close()
		s.srv = nil
	}
}

// Start serves again on the same address after Stop.
func (s *Server) Start() {
	s.t.Helper()
	s.srvMu.Lock()
	running := s.srv != nil
	s.srvMu.Unlock()
	if running {
		return
	}
	var lis net.Listener
	var err error
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if lis, err = net.Listen("tcp", s.addr); err == nil || time.Now().After(deadline) {
			break
		}
	}
	if err != nil {
		s.t.Fatalf("gittest: listen again on %s: %v", s.addr, err)
	}
	s.serve(lis)
}

func (s *Server) serve(lis net.Listener) {
	srv := &http.Server{Handler: s.handler, ReadHeaderTimeout: 10 * time.Second}
	s.srvMu.Lock()
	s.srv = srv
	s.srvMu.Unlock()
	go func() { _ = srv.Serve(lis) }()
}

// Head returns the commit id of the default branch, "" before the first commit.
func (s *Server) Head() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	ref, err := s.repo.Reference(s.branch, false)
	if err != nil {
		return ""
	}
	return ref.Hash().String()
}

// Refs implements gitserve.RefSource: the refs as they are now, read under
// the lock that pushes and commits hold.
func (s *Server) Refs(context.Context) ([]*plumbing.Reference, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	iter, err := s.repo.Storer.IterReferences()
	if err != nil {
		return nil, err
	}
	var refs []*plumbing.Reference
	err = iter.ForEach(func(r *plumbing.Reference) error { refs = append(refs, r); return nil })
	if err != nil {
		return nil, err
	}
	if head, err := s.repo.Storer.Reference(plumbing.HEAD); err == nil {
		refs = append(refs, head)
	}
	return refs, nil
}

// Commit commits files on top of the default branch's head, as a person
// pushing directly would: each value is the new content of its path (Deleted
// removes it). author is "Name <email>" (empty: DefaultAuthor). It returns the
// new commit id.
func (s *Server) Commit(t testing.TB, files map[string]string, msg, author string) string {
	t.Helper()
	h, err := s.commit(files, msg, author)
	if err != nil {
		t.Fatalf("gittest: commit %q: %v", msg, err)
	}
	return h
}

// TryCommit is Commit returning its error, for goroutines other than the
// test's (which must not call t.Fatal).
func (s *Server) TryCommit(files map[string]string, msg, author string) (string, error) {
	return s.commit(files, msg, author)
}

func (s *Server) commit(files map[string]string, msg, author string) (string, error) {
	return s.write(files, msg, author, false)
}

// write commits files on the branch's head tree; orphan leaves the commit without
// parents (a rewritten history).
func (s *Server) write(files map[string]string, msg, author string, orphan bool) (string, error) {
	if author == "" {
		author = DefaultAuthor
	}
	addr, err := mail.ParseAddress(author)
	if err != nil {
		return "", fmt.Errorf("author %q: %w", author, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.repo.Storer
	var parents []plumbing.Hash
	var base *object.Tree
	ref, err := s.repo.Reference(s.branch, false)
	switch {
	case err == nil:
		c, err := s.repo.CommitObject(ref.Hash())
		if err != nil {
			return "", err
		}
		if base, err = c.Tree(); err != nil {
			return "", err
		}
		parents = []plumbing.Hash{c.Hash}
	case !errors.Is(err, plumbing.ErrReferenceNotFound):
		return "", err
	}
	edits := map[string]gitobj.Edit{}
	for p, content := range files {
		if content == Deleted {
			edits[p] = gitobj.Edit{Delete: true}
			continue
		}
		h, err := gitobj.WriteBlob(st, []byte(content))
		if err != nil {
			return "", err
		}
		edits[p] = gitobj.Edit{Hash: h, Mode: filemode.Regular}
	}
	tree, _, err := gitobj.Editor{Store: st}.EditTree(base, edits)
	if err != nil {
		return "", err
	}
	sig := object.Signature{Name: addr.Name, Email: addr.Address, When: time.Now()}
	if orphan {
		parents = nil
	}
	c := &object.Commit{Author: sig, Committer: sig, Message: msg + "\n", TreeHash: tree, ParentHashes: parents}
	obj := st.NewEncodedObject()
	if err := c.Encode(obj); err != nil {
		return "", err
	}
	h, err := st.SetEncodedObject(obj)
	if err != nil {
		return "", err
	}
	if err := st.SetReference(plumbing.NewHashReference(s.branch, h)); err != nil {
		return "", err
	}
	return h.String(), nil
}

// authorize checks the token, when the server has one.
func (s *Server) authorize(r *http.Request) bool {
	if s.token == "" {
		return true
	}
	tok, ok := gitserve.Token(r)
	return ok && subtle.ConstantTimeCompare([]byte(tok), []byte(s.token)) == 1
}

func (s *Server) authorizeOrChallenge(w http.ResponseWriter, r *http.Request) bool {
	if s.authorize(r) {
		return true
	}
	w.Header().Set("WWW-Authenticate", `Basic realm="gittest"`)
	http.Error(w, "authentication required", http.StatusUnauthorized)
	return false
}

// receiveCaps are the capabilities of receive-pack. no-thin keeps clients
// from sending thin packs, which go-git's storage cannot complete.
const receiveCaps = "report-status delete-refs ofs-delta no-thin agent=outpost-gittest/1"

func (s *Server) advertiseReceive(w http.ResponseWriter) {
	refs, err := s.Refs(context.Background())
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	var lines []string
	for _, r := range refs {
		if r.Type() == plumbing.HashReference {
			lines = append(lines, r.Hash().String()+" "+r.Name().String())
		}
	}
	slices.Sort(lines)
	if len(lines) == 0 {
		lines = []string{plumbing.ZeroHash.String() + " capabilities^{}"}
	}
	lines[0] += "\x00" + receiveCaps
	w.Header().Set("Content-Type", "application/x-git-receive-pack-advertisement")
	w.Header().Set("Cache-Control", "no-cache")
	e := pktline.NewEncoder(w)
	_ = e.EncodeString("# service=git-receive-pack\n")
	_ = e.Flush()
	for _, l := range lines {
		_ = e.EncodeString(l + "\n")
	}
	_ = e.Flush()
}

// receivePack applies a push: the pack, then each ref update if the ref is
// still at the old value the client saw (else "ng ... fetch first").
func (s *Server) receivePack(w http.ResponseWriter, r *http.Request) {
	var body io.Reader = http.MaxBytesReader(w, r.Body, 256<<20)
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		body = zr
	}
	req := packp.NewReferenceUpdateRequest()
	if err := req.Decode(body); err != nil {
		http.Error(w, "bad receive-pack request: "+err.Error(), http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	unpack := "ok"
	hasPack := slices.ContainsFunc(req.Commands, func(c *packp.Command) bool { return c.Action() != packp.Delete })
	if hasPack && req.Packfile != nil {
		if err := packfile.UpdateObjectStorage(s.repo.Storer, req.Packfile); err != nil && !errors.Is(err, packfile.ErrEmptyPackfile) {
			unpack = err.Error()
		}
	}
	var status []string
	for _, c := range req.Commands {
		status = append(status, s.updateRef(c, unpack == "ok"))
	}
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/x-git-receive-pack-result")
	w.Header().Set("Cache-Control", "no-cache")
	if !req.Capabilities.Supports("report-status") {
		return
	}
	e := pktline.NewEncoder(w)
	_ = e.EncodeString("unpack " + unpack + "\n")
	for _, st := range status {
		_ = e.EncodeString(st + "\n")
	}
	_ = e.Flush()
}

// updateRef applies one command if the ref is at c.Old; s.mu must be held.
func (s *Server) updateRef(c *packp.Command, unpacked bool) string {
	if !unpacked {
		return "ng " + c.Name.String() + " unpacker error"
	}
	cur := plumbing.ZeroHash
	if ref, err := s.repo.Storer.Reference(c.Name); err == nil {
		cur = ref.Hash()
	}
	if cur != c.Old {
		return "ng " + c.Name.String() + " fetch first"
	}
	var err error
	if c.Action() == packp.Delete {
		err = s.repo.Storer.RemoveReference(c.Name)
	} else {
		if _, err = s.repo.CommitObject(c.New); err == nil || c.Name.IsTag() {
			err = s.repo.Storer.SetReference(plumbing.NewHashReference(c.Name, c.New))
		}
	}
	if err != nil {
		return "ng " + c.Name.String() + " " + strings.ReplaceAll(err.Error(), "\n", " ")
	}
	return "ok " + c.Name.String()
}
