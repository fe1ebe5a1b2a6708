package gitserve

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/storer"
)

// selection is what one upload-pack response sends.
type selection struct {
	// objects go into the pack.
	objects []plumbing.Hash
	// shallow are the new shallow boundary commits (deepen only).
	shallow []plumbing.Hash
	// unshallow are client shallow commits whose parents are now sent.
	unshallow []plumbing.Hash
}

// selector computes a selection: the objects reachable from the wants that the
// client does not have, judged by the common haves, the way git's pack-objects
// does without bitmaps (commits reachable from a have are skipped; the trees of
// the "edge" commits are taken as present on the client).
//
// The trees of the wanted commits are walked paired with the trees of the edge
// commits at the same path (see addTree): a have tree is decoded only where the
// wanted tree differs from it, so a fetch of a commit that changed one file
// reads the trees along that file's path, not the whole repository.
type selector struct {
	ctx     context.Context
	s       storer.EncodedObjectStorer
	common  map[plumbing.Hash]bool
	shallow map[plumbing.Hash]bool // the client's shallow commits
	// have holds objects known to be on the client: the edge commits' root
	// trees and the entries of every have tree decoded so far. It is never
	// complete; an object missing from it may still be on the client.
	have map[plumbing.Hash]bool
	// haveDirs caches the decoded have trees: entry name to tree hash, for the
	// subdirectories only (the other entries are in have).
	haveDirs map[plumbing.Hash]map[string]plumbing.Hash
	out      map[plumbing.Hash]bool
	sel      selection
}

// selectObjects computes the answer to req, whose common haves are common: the
// shallow update on deepen, and when req is done the objects of the pack.
func selectObjects(ctx context.Context, s storer.EncodedObjectStorer, req *uploadRequest, common []plumbing.Hash) (*selection, error) {
	sel := &selector{ctx: ctx, s: s, common: set(common), shallow: set(req.shallows),
		have: map[plumbing.Hash]bool{}, haveDirs: map[plumbing.Hash]map[string]plumbing.Hash{},
		out: map[plumbing.Hash]bool{}}
	var commits, others []plumbing.Hash
	for _, w := range req.wants {
		c, o, err := sel.peel(w)
		if err != nil {
			return nil, err
		}
		commits, others = append(commits, c...), append(others, o...)
	}
	var result, edges []plumbing.Hash
	var err error
	if req.depth > 0 {
		result, edges, err = sel.walkDepth(commits, req.depth)
	} else {
		result, edges, err = sel.walkTime(commits)
	}
	if err != nil {
		return nil, err
	}
	if !req.done {
		// A deepen round before "done" (the git CLI's first request of a
		// shallow fetch) answers with the shallow update only: no pack.
		return &sel.sel, nil
	}
	// The root trees of the edge commits, on the client with all their content.
	var haveRoots []plumbing.Hash
	for _, e := range edges {
		c, err := object.GetCommit(s, e)
		if err != nil {
			continue // a have that is not a commit, or is missing: nothing to skip
		}
		if !sel.have[c.TreeHash] {
			sel.have[c.TreeHash] = true
			haveRoots = append(haveRoots, c.TreeHash)
		}
	}
	for _, h := range result {
		c, err := object.GetCommit(s, h)
		if err != nil {
			return nil, fmt.Errorf("read commit %s: %w", h, err)
		}
		sel.add(h)
		if err := sel.addTree(c.TreeHash, haveRoots); err != nil {
			return nil, err
		}
	}
	for _, h := range others {
		if err := sel.addAny(h, haveRoots); err != nil {
			return nil, err
		}
	}
	return &sel.sel, nil
}

func set(hs []plumbing.Hash) map[plumbing.Hash]bool {
	m := make(map[plumbing.Hash]bool, len(hs))
	for _, h := range hs {
		m[h] = true
	}
	return m
}

func (sel *selector) add(h plumbing.Hash) {
	if !sel.out[h] {
		sel.out[h] = true
		sel.sel.objects = append(sel.sel.objects, h)
	}
}

// peel follows a want through annotated tags: commits come back to be walked,
// tags are added, trees and blobs come back as others.
func (sel *selector) peel(h plumbing.Hash) (commits, others []plumbing.Hash, err error) {
	for range 16 {
		obj, err := sel.s.EncodedObject(plumbing.AnyObject, h)
		if err != nil {
			return nil, nil, fmt.Errorf("read %s: %w", h, err)
		}
		switch obj.Type() {
		case plumbing.CommitObject:
			return []plumbing.Hash{h}, nil, nil
		case plumbing.TagObject:
			sel.add(h)
			t, err := object.DecodeTag(sel.s, obj)
			if err != nil {
				return nil, nil, fmt.Errorf("read tag %s: %w", h, err)
			}
			h = t.Target
		default:
			return nil, []plumbing.Hash{h}, nil
		}
	}
	return nil, nil, fmt.Errorf("tag chain at %s is too long", h)
}

// addAny adds a wanted tree (with its content) or blob. A wanted tree has no
// path; it is paired with the have root trees, which only costs a look.
func (sel *selector) addAny(h plumbing.Hash, haveRoots []plumbing.Hash) error {
	if sel.have[h] {
		return nil
	}
	obj, err := sel.s.EncodedObject(plumbing.AnyObject, h)
	if err != nil {
		return fmt.Errorf("read %s: %w", h, err)
	}
	if obj.Type() == plumbing.TreeObject {
		return sel.addTree(h, haveRoots)
	}
	sel.add(h)
	return nil
}

// addTree adds tree h and everything in it the client does not have. haves
// are the trees the client has at the same path (in the edge commits): their
// entries are on the client, so an entry of h found among them is skipped with
// all it holds, and a subdirectory of h is walked paired with the have
// subdirectories of the same name. Only have trees at paths where h differs
// are decoded. Objects the client has elsewhere (a blob moved to another path)
// may be sent again, which is harmless.
func (sel *selector) addTree(h plumbing.Hash, haves []plumbing.Hash) error {
	if sel.have[h] || sel.out[h] {
		return nil
	}
	if err := sel.ctx.Err(); err != nil {
		return err
	}
	t, err := object.GetTree(sel.s, h)
	if err != nil {
		return fmt.Errorf("read tree %s: %w", h, err)
	}
	sel.add(h)
	dirs := make([]map[string]plumbing.Hash, 0, len(haves))
	for _, hv := range haves {
		d, err := sel.haveTree(hv)
		if err != nil {
			return err
		}
		dirs = append(dirs, d)
	}
	var sub []plumbing.Hash
	for _, e := range t.Entries {
		switch {
		case e.Mode == filemode.Submodule, sel.have[e.Hash]:
		case e.Mode == filemode.Dir:
			sub = sub[:0]
			for _, d := range dirs {
				if hd, ok := d[e.Name]; ok && !slices.Contains(sub, hd) {
					sub = append(sub, hd)
				}
			}
			if err := sel.addTree(e.Hash, slices.Clone(sub)); err != nil {
				return err
			}
		default:
			sel.add(e.Hash)
		}
	}
	return nil
}

// haveTree decodes a tree the client has (once per selection): its entries go
// into have, and its subdirectories come back by name.
func (sel *selector) haveTree(h plumbing.Hash) (map[string]plumbing.Hash, error) {
	if d, ok := sel.haveDirs[h]; ok {
		return d, nil
	}
	t, err := object.GetTree(sel.s, h)
	if err != nil {
		return nil, fmt.Errorf("read tree %s: %w", h, err)
	}
	d := map[string]plumbing.Hash{}
	for _, e := range t.Entries {
		switch e.Mode {
		case filemode.Submodule:
		case filemode.Dir:
			d[e.Name] = e.Hash
			sel.have[e.Hash] = true
		default:
			sel.have[e.Hash] = true
		}
	}
	sel.haveDirs[h] = d
	return d, nil
}

// walkDepth walks at most depth commits down from the wants, recording the
// shallow boundary and the client shallow commits it deepens.
func (sel *selector) walkDepth(wants []plumbing.Hash, depth int) (result, edges []plumbing.Hash, err error) {
	visited := map[plumbing.Hash]bool{}
	level := wants
	for d := 1; len(level) > 0; d++ {
		var next []plumbing.Hash
		for _, h := range level {
			if visited[h] {
				continue
			}
			visited[h] = true
			if err := sel.ctx.Err(); err != nil {
				return nil, nil, err
			}
			c, err := object.GetCommit(sel.s, h)
			if err != nil {
				return nil, nil, fmt.Errorf("read commit %s: %w", h, err)
			}
			onClient := sel.common[h] || sel.shallow[h]
			if !onClient {
				result = append(result, h)
			} else {
				edges = append(edges, h)
			}
			switch {
			case d == depth:
				if len(c.ParentHashes) > 0 && !sel.shallow[h] {
					sel.sel.shallow = append(sel.sel.shallow, h)
				}
				continue
			case sel.shallow[h] && len(c.ParentHashes) > 0:
				sel.sel.unshallow = append(sel.sel.unshallow, h)
			}
			next = append(next, c.ParentHashes...)
		}
		level = next
	}
	for h := range sel.common {
		edges = append(edges, h)
	}
	return result, edges, nil
}

// Flags of walkTime.
const (
	fSeen uint8 = 1 << iota
	fUninteresting
	fQueued
	fDone
)

// walkTime is git's revision walk "wants ^haves": commits in committer-time
// order, newest first, marking everything reachable from a common have
// uninteresting, until only uninteresting commits are left to look at. The
// client's shallow commits are present on the client but their parents are not.
func (sel *selector) walkTime(wants []plumbing.Hash) (result, edges []plumbing.Hash, err error) {
	w := &timeWalk{sel: sel, flags: map[plumbing.Hash]uint8{}, commits: map[plumbing.Hash]*object.Commit{}}
	for h := range sel.common {
		if err := w.push(h, true); err != nil && !errors.Is(err, plumbing.ErrObjectNotFound) {
			return nil, nil, err
		}
	}
	for _, h := range wants {
		if err := w.push(h, false); err != nil {
			return nil, nil, err
		}
	}
	var done []plumbing.Hash
	for w.q.Len() > 0 && w.interesting > 0 {
		if err := sel.ctx.Err(); err != nil {
			return nil, nil, err
		}
		c := heap.Pop(&w.q).(*object.Commit)
		f := w.flags[c.Hash]
		w.flags[c.Hash] = f&^fQueued | fDone
		if f&fUninteresting == 0 {
			w.interesting--
		}
		switch {
		case sel.shallow[c.Hash]:
			w.flags[c.Hash] |= fUninteresting // on the client, without its parents
		case f&fUninteresting != 0:
			for _, p := range c.ParentHashes {
				if err := w.push(p, true); err != nil {
					return nil, nil, err
				}
			}
		default:
			done = append(done, c.Hash)
			for _, p := range c.ParentHashes {
				if err := w.push(p, false); err != nil {
					return nil, nil, err
				}
			}
		}
	}
	edgeSet := map[plumbing.Hash]bool{}
	for _, h := range done {
		if w.flags[h]&fUninteresting != 0 {
			continue // found to be reachable from a have after all (clock skew)
		}
		result = append(result, h)
		for _, p := range w.commits[h].ParentHashes {
			if w.flags[p]&fUninteresting != 0 && !edgeSet[p] {
				edgeSet[p] = true
				edges = append(edges, p)
			}
		}
	}
	for h := range sel.common {
		if !edgeSet[h] {
			edges = append(edges, h)
		}
	}
	return result, edges, nil
}

// timeWalk is the state of walkTime.
type timeWalk struct {
	sel         *selector
	flags       map[plumbing.Hash]uint8
	commits     map[plumbing.Hash]*object.Commit
	q           commitQueue
	interesting int // queued commits not marked uninteresting
}

// push queues commit h, or marks it uninteresting when it was seen already.
func (w *timeWalk) push(h plumbing.Hash, uninteresting bool) error {
	f := w.flags[h]
	if f&fSeen != 0 {
		if uninteresting {
			w.markUninteresting(h)
		}
		return nil
	}
	c, err := object.GetCommit(w.sel.s, h)
	if err != nil {
		if uninteresting {
			return err // a have that is not a commit: the caller ignores it
		}
		return fmt.Errorf("read commit %s: %w", h, err)
	}
	w.commits[h] = c
	f = fSeen | fQueued
	if uninteresting {
		f |= fUninteresting
	} else {
		w.interesting++
	}
	w.flags[h] = f
	heap.Push(&w.q, c)
	return nil
}

// markUninteresting marks h, and what was already walked below it, uninteresting.
func (w *timeWalk) markUninteresting(h plumbing.Hash) {
	stack := []plumbing.Hash{h}
	for len(stack) > 0 {
		h := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		f := w.flags[h]
		if f&fSeen == 0 || f&fUninteresting != 0 {
			continue
		}
		w.flags[h] = f | fUninteresting
		if f&fQueued != 0 {
			w.interesting--
		}
		if f&fDone != 0 && !w.sel.shallow[h] {
			stack = append(stack, w.commits[h].ParentHashes...)
		}
	}
}

// commitQueue is a max-heap of commits by committer time.
type commitQueue []*object.Commit

func (q commitQueue) Len() int { return len(q) }
func (q commitQueue) Less(i, j int) bool {
	return q[i].Committer.When.After(q[j].Committer.When)
}
func (q commitQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *commitQueue) Push(x any)   { *q = append(*q, x.(*object.Commit)) }
func (q *commitQueue) Pop() any {
	old := *q
	c := old[len(old)-1]
	*q = old[:len(old)-1]
	return c
}
