package gitserve

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/format/pktline"
)

// Limits of one upload-pack request.
const (
	// maxWants bounds the want lines of a request.
	maxWants = 10000
	// maxHaves bounds the have lines of a request.
	maxHaves = 100000
	// maxDepth bounds a deepen request.
	maxDepth = 1 << 20
	// infiniteDepth is the depth "git fetch --unshallow" sends.
	infiniteDepth = 0x7fffffff
)

// uploadRequest is one stateless (smart HTTP) upload-pack request of protocol
// v0: wants with capabilities, shallow and deepen lines, then the haves of one
// negotiation round, ending with "done" or a flush.
type uploadRequest struct {
	wants    []plumbing.Hash
	caps     map[string]string
	shallows []plumbing.Hash
	depth    int
	haves    []plumbing.Hash
	// negotiates is true when the request holds a negotiation section after the
	// wants' flush; a deepen-only request (which asks just for the shallow
	// update) holds none.
	negotiates bool
	// done is true when the request ends with "done": the client wants the pack.
	done bool
}

// requestError is a malformed request; the handler answers it with 400.
type requestError struct{ msg string }

func (e *requestError) Error() string { return "bad upload-pack request: " + e.msg }

func badRequest(format string, args ...any) error {
	return &requestError{msg: fmt.Sprintf(format, args...)}
}

// parseUploadRequest decodes an upload-pack request. It is pure apart from
// reading r.
func parseUploadRequest(r io.Reader) (*uploadRequest, error) {
	req := &uploadRequest{caps: map[string]string{}}
	sc := pktline.NewScanner(r)
	next := func() ([]byte, bool, error) {
		if !sc.Scan() {
			if err := sc.Err(); err != nil {
				var el *pktline.ErrorLine
				if errors.As(err, &el) || errors.Is(err, pktline.ErrInvalidPktLen) {
					return nil, false, badRequest("%v", err)
				}
				return nil, false, err
			}
			return nil, false, nil
		}
		return bytes.TrimSuffix(sc.Bytes(), []byte("\n")), true, nil
	}
	// Wants, shallows and deepen, up to a flush.
	for {
		line, ok, err := next()
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, badRequest("unexpected end of request in the want section")
		}
		if len(line) == 0 {
			break
		}
		if err := req.wantLine(string(line)); err != nil {
			return nil, err
		}
	}
	if len(req.wants) == 0 {
		return nil, badRequest("no want")
	}
	// Haves of one round, ending with done, a flush or the end of the request.
	for {
		line, ok, err := next()
		if err != nil {
			return nil, err
		}
		if !ok {
			return req, nil
		}
		req.negotiates = true
		s := string(line)
		switch {
		case len(line) == 0:
			// The end of a round; a stateless client sends one per request, but
			// reading on does no harm.
		case s == "done":
			req.done = true
			return req, nil
		case strings.HasPrefix(s, "have "):
			h, err := parseHash(s[len("have "):])
			if err != nil {
				return nil, err
			}
			if len(req.haves) >= maxHaves {
				return nil, badRequest("more than %d haves", maxHaves)
			}
			req.haves = append(req.haves, h)
		default:
			return nil, badRequest("unexpected line %q in the have section", truncate(s))
		}
	}
}

// wantLine decodes one line of the want section.
func (req *uploadRequest) wantLine(s string) error {
	switch {
	case strings.HasPrefix(s, "want "):
		rest := s[len("want "):]
		hashText, caps, hasCaps := strings.Cut(rest, " ")
		h, err := parseHash(hashText)
		if err != nil {
			return err
		}
		if hasCaps {
			if len(req.wants) > 0 {
				return badRequest("capabilities after the first want")
			}
			for _, c := range strings.Fields(caps) {
				k, v, _ := strings.Cut(c, "=")
				req.caps[k] = v
			}
		}
		if len(req.wants) >= maxWants {
			return badRequest("more than %d wants", maxWants)
		}
		req.wants = append(req.wants, h)
	case strings.HasPrefix(s, "shallow "):
		h, err := parseHash(s[len("shallow "):])
		if err != nil {
			return err
		}
		if len(req.shallows) >= maxHaves {
			return badRequest("too many shallow lines")
		}
		req.shallows = append(req.shallows, h)
	case strings.HasPrefix(s, "deepen "):
		n, err := strconv.Atoi(s[len("deepen "):])
		if n == infiniteDepth {
			n = maxDepth // "git fetch --unshallow": as deep as history goes
		}
		if err != nil || n < 0 || n > maxDepth {
			return badRequest("bad deepen %q", truncate(s))
		}
		req.depth = n
	case strings.HasPrefix(s, "deepen-since "), strings.HasPrefix(s, "deepen-not "):
		return badRequest("%s is not supported (not advertised)", strings.Fields(s)[0])
	case strings.HasPrefix(s, "filter "):
		return badRequest("filter is not supported (not advertised)")
	default:
		return badRequest("unexpected line %q in the want section", truncate(s))
	}
	return nil
}

func hasCap(caps map[string]string, name string) bool {
	_, ok := caps[name]
	return ok
}

// parseHash decodes a 40-digit object id.
func parseHash(s string) (plumbing.Hash, error) {
	s = strings.TrimSpace(s)
	if len(s) != 40 {
		return plumbing.ZeroHash, badRequest("bad object id %q", truncate(s))
	}
	if _, err := hex.DecodeString(s); err != nil {
		return plumbing.ZeroHash, badRequest("bad object id %q", truncate(s))
	}
	return plumbing.NewHash(s), nil
}

func truncate(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}

// ackMode is the acknowledgement protocol the client asked for.
type ackMode int

const (
	ackSingle ackMode = iota
	ackMulti
	ackDetailed
)

func (req *uploadRequest) ackMode() ackMode {
	switch {
	case hasCap(req.caps, "multi_ack_detailed"):
		return ackDetailed
	case hasCap(req.caps, "multi_ack"):
		return ackMulti
	}
	return ackSingle
}

// negotiate computes the ACK/NAK lines of the response to req, with has telling
// which objects the server holds, as git's upload-pack does for a stateless
// request, and the common objects (the client's haves the server holds). It
// never sends "ready": the client negotiates until it runs out of haves and
// sends done, which is correct, just not minimal.
func negotiate(req *uploadRequest, has func(plumbing.Hash) bool) (lines []string, common []plumbing.Hash) {
	mode := req.ackMode()
	seen := map[plumbing.Hash]bool{}
	for _, h := range req.haves {
		if seen[h] || !has(h) {
			continue
		}
		seen[h] = true
		common = append(common, h)
		switch mode {
		case ackDetailed:
			lines = append(lines, "ACK "+h.String()+" common")
		case ackMulti:
			lines = append(lines, "ACK "+h.String()+" continue")
		default:
			if len(common) == 1 {
				lines = append(lines, "ACK "+h.String())
			}
		}
	}
	switch {
	case !req.negotiates:
		// A deepen-only request: git's upload-pack answers the shallow update
		// and nothing more.
	case !req.done:
		if len(common) == 0 || mode != ackSingle {
			lines = append(lines, "NAK")
		}
	case len(common) == 0:
		lines = append(lines, "NAK")
	case mode != ackSingle:
		lines = append(lines, "ACK "+common[len(common)-1].String())
	}
	return lines, common
}
