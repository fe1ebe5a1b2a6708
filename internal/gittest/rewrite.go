package gittest

import (
	"testing"

	"github.com/go-git/go-git/v5/plumbing"
)

// ForcePush rewrites the default branch as a force-push of a new history would: a
// commit without parents holding the head's files with files applied (as in
// Commit). It returns the new commit id.
func (s *Server) ForcePush(t testing.TB, files map[string]string, msg string) string {
	t.Helper()
	h, err := s.write(files, msg, "", true)
	if err != nil {
		t.Fatalf("gittest: force-push %q: %v", msg, err)
	}
	return h
}

// DeleteBranch deletes the default branch, as `git push --delete` would.
func (s *Server) DeleteBranch(t testing.TB) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.repo.Storer.RemoveReference(s.branch); err != nil {
		t.Fatalf("gittest: delete branch %s: %v", s.branch, err)
	}
}

// SetBranch points the default branch at commit (e.g. to bring a deleted branch
// back).
func (s *Server) SetBranch(t testing.TB, commit string) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.repo.Storer.SetReference(plumbing.NewHashReference(s.branch, plumbing.NewHash(commit))); err != nil {
		t.Fatalf("gittest: set branch %s to %s: %v", s.branch, commit, err)
	}
}
