package httpapi

import (
	"bufio"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"strings"
	"unicode"

	apiv1 "github.com/outpost-gitops/outpost/api/v1"
	"github.com/outpost-gitops/outpost/hub/gitstore"
	"github.com/outpost-gitops/outpost/hub/store"
)

// MinAdminTokenLen is the shortest admin token accepted, in bytes.
const MinAdminTokenLen = 16

// DefaultAdminName is the identity of an admin token given without a name.
const DefaultAdminName = "admin"

// authorDomain is the email domain of an identity given without an email.
const authorDomain = "outpost.invalid"

// AdminTokens are the admin bearer tokens and the identity each one stands for. Only
// their SHA-256 hashes are kept in memory.
type AdminTokens struct {
	entries []adminEntry
}

type adminEntry struct {
	hash     [sha256.Size]byte
	identity gitstore.Author
}

// identityWithEmail matches "Jane Doe <jane@example.com>".
var identityWithEmail = regexp.MustCompile(`^([^<>]*?)\s*<([^<>\s]+)>$`)

// TokenFileError is a malformed line of an admin tokens file.
type TokenFileError struct {
	// File is the file's path (empty when parsed from a reader).
	File string
	// Line is the 1-based line number.
	Line int
	// Msg says what is wrong; it never holds the token.
	Msg string
}

// Error formats as "file:line: msg".
func (e *TokenFileError) Error() string {
	if e.File == "" {
		return fmt.Sprintf("admin tokens line %d: %s", e.Line, e.Msg)
	}
	return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
}

// LoadAdminTokens reads an admin tokens file; see ParseAdminTokens for its format.
func LoadAdminTokens(path string) (*AdminTokens, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("admin tokens: %w", err)
	}
	defer f.Close()
	t, err := ParseAdminTokens(f)
	var tfe *TokenFileError
	if errors.As(err, &tfe) {
		tfe.File = path
	}
	return t, err
}

// ParseAdminTokens reads admin tokens, one per line: "name:token" or just "token"
// (the identity is then DefaultAdminName). Blank lines and lines starting with '#'
// are skipped; the first ':' separates the name, so a token holds no ':'. The name is
// the caller's identity and the author of the commits its requests make: "Jane Doe
// <jane@example.com>", or a bare name ("ci-bot", whose email is then
// ci-bot@outpost.invalid). Tokens are at least MinAdminTokenLen bytes, without
// whitespace, and unique. At least one token is required.
func ParseAdminTokens(r io.Reader) (*AdminTokens, error) {
	t := &AdminTokens{}
	seen := map[[sha256.Size]byte]bool{}
	sc := bufio.NewScanner(r)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, token, ok := strings.Cut(line, ":")
		if !ok {
			name, token = DefaultAdminName, line
		}
		name, token = strings.TrimSpace(name), strings.TrimSpace(token)
		switch {
		case len(token) < MinAdminTokenLen:
			return nil, &TokenFileError{Line: n, Msg: fmt.Sprintf("the token is shorter than %d bytes", MinAdminTokenLen)}
		case strings.IndexFunc(token, func(c rune) bool { return unicode.IsSpace(c) || unicode.IsControl(c) }) >= 0:
			return nil, &TokenFileError{Line: n, Msg: "the token holds whitespace or control characters"}
		}
		id, err := parseIdentity(name)
		if err != nil {
			return nil, &TokenFileError{Line: n, Msg: err.Error()}
		}
		h := sha256.Sum256([]byte(token))
		if seen[h] {
			return nil, &TokenFileError{Line: n, Msg: "the token is listed twice"}
		}
		seen[h] = true
		t.entries = append(t.entries, adminEntry{hash: h, identity: id})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("admin tokens: %w", err)
	}
	if len(t.entries) == 0 {
		return nil, &TokenFileError{Line: n, Msg: "no token"}
	}
	return t, nil
}

// parseIdentity turns the name of a token line into a commit author.
func parseIdentity(name string) (gitstore.Author, error) {
	if name == "" {
		return gitstore.Author{}, errors.New("the name before ':' is empty")
	}
	if len(name) > 200 || strings.IndexFunc(name, unicode.IsControl) >= 0 {
		return gitstore.Author{}, errors.New("the name is longer than 200 bytes or holds control characters")
	}
	if m := identityWithEmail.FindStringSubmatch(name); m != nil {
		if m[1] == "" {
			return gitstore.Author{Name: m[2], Email: m[2]}, nil
		}
		return gitstore.Author{Name: m[1], Email: m[2]}, nil
	}
	if strings.ContainsAny(name, "<>") {
		return gitstore.Author{}, fmt.Errorf("the name %q holds '<' or '>' but is not \"Name <email>\"", name)
	}
	if strings.Contains(name, "@") && !strings.ContainsAny(name, " \t") {
		return gitstore.Author{Name: name, Email: name}, nil
	}
	local := strings.ToLower(strings.Join(strings.Fields(name), "."))
	return gitstore.Author{Name: name, Email: local + "@" + authorDomain}, nil
}

// lookup returns the identity of an admin token. It compares the token's hash with
// every entry's in constant time, without stopping at a match.
func (t *AdminTokens) lookup(token string) (gitstore.Author, bool) {
	if t == nil {
		return gitstore.Author{}, false
	}
	h := sha256.Sum256([]byte(token))
	found := -1
	for i := range t.entries {
		if subtle.ConstantTimeCompare(h[:], t.entries[i].hash[:]) == 1 {
			found = i
		}
	}
	if found < 0 {
		return gitstore.Author{}, false
	}
	return t.entries[found].identity, true
}

// Len returns the number of tokens.
func (t *AdminTokens) Len() int { return len(t.entries) }

// caller is who sent a request: an admin (with the identity that authors its
// commits) or the agent of one cluster.
type caller struct {
	admin   bool
	author  gitstore.Author // admins
	cluster string          // agents
	// key names the token, for per-token limits; empty without a token.
	key string
}

// access is the kind of caller a route admits.
type access int

const (
	// public routes need no token (health, metrics, the dashboard's own pages).
	public access = iota
	// adminOnly routes need an admin token.
	adminOnly
	// agentOnly routes need an agent token (the handler checks the cluster).
	agentOnly
	// signed routes (webhooks) check a signature of the body instead of a token.
	signed
	// gitRead routes need an admin token or the agent token of the repository's
	// cluster, sent as a basic-auth password or a bearer token.
	gitRead
	// adminRead routes (the dashboard) need an admin token, sent as a basic-auth
	// password (what a browser prompts for) or a bearer token.
	adminRead
)

// bearerToken returns the token of an "Authorization: Bearer" header.
func bearerToken(r *http.Request) (string, bool) {
	const prefix = "bearer "
	h := r.Header.Get("Authorization")
	if len(h) <= len(prefix) || !strings.EqualFold(h[:len(prefix)], prefix) {
		return "", false
	}
	t := strings.TrimSpace(h[len(prefix):])
	return t, t != ""
}

// identify returns the caller a token stands for: an admin, or the agent of the
// cluster whose token hash the store holds. An unknown token is a 401.
func (a *API) identify(ctx context.Context, token string) (*caller, error) {
	if id, ok := a.cfg.Admins.lookup(token); ok {
		h := sha256.Sum256([]byte(token))
		return &caller{admin: true, author: id, key: "admin:" + hex.EncodeToString(h[:8])}, nil
	}
	if strings.HasPrefix(token, store.TokenPrefix) && len(token) <= 256 {
		hash := store.HashToken(token)
		c, err := a.cfg.Store.LookupToken(ctx, hash)
		switch {
		case errors.Is(err, store.ErrNotFound):
		case err != nil:
			return nil, fmt.Errorf("authenticate: %w", err)
		case subtle.ConstantTimeCompare(c.TokenHash[:], hash[:]) == 1:
			return &caller{cluster: c.Name, key: "cluster:" + c.Name}, nil
		}
	}
	return nil, errUnauthorized("unknown token")
}

// authenticate checks the request's bearer token against what the route admits. An
// address that failed too often is refused before its token is looked at.
func (a *API) authenticate(r *http.Request, acc access) (*caller, error) {
	if acc == public {
		return &caller{}, nil
	}
	if !a.authFails.allowed(sourcePrefix(r)) {
		return nil, &apiError{resp: apiv1.ErrorResponse{Code: apiv1.CodeTooManyRequests,
			Message: "too many failed authentications from this address: retry later"}, retryAfter: tooManyRetryAfter}
	}
	if acc == signed {
		return &caller{}, nil
	}
	var (
		token string
		ok    bool
	)
	if acc == gitRead || acc == adminRead {
		token, ok = basicOrBearer(r)
	} else {
		token, ok = bearerToken(r)
	}
	if !ok {
		return nil, errUnauthorized("no bearer token: send Authorization: Bearer <token>")
	}
	c, err := a.identify(r.Context(), token)
	var ae *apiError
	if errors.As(err, &ae) && ae.resp.Code == apiv1.CodeUnauthorized {
		a.authFailed(r, "unknown token")
	}
	if err != nil {
		return nil, err
	}
	switch {
	case (acc == adminOnly || acc == adminRead) && !c.admin:
		return nil, errForbidden("an agent token may only call the agent endpoints of its own cluster")
	case acc == agentOnly && c.admin:
		return nil, errForbidden("the agent endpoints take an agent token, not an admin token")
	}
	return c, nil
}

// checkCluster refuses an agent acting for another cluster than its token's.
func checkCluster(c *caller, field, cluster string) error {
	if c.admin || c.cluster != cluster {
		return &apiError{resp: apiv1.ErrorResponse{Code: apiv1.CodeForbidden, Field: field,
			Message: fmt.Sprintf("the token is not the agent token of cluster %q", cluster)}}
	}
	return nil
}

// authFailed counts a failed authentication (a token or signature was sent, and it is
// wrong) against the request's source address and logs it at warn, with the address
// and never the credential; once the address is blocked, its further requests are
// refused without a log line each.
func (a *API) authFailed(r *http.Request, reason string) {
	src := sourcePrefix(r)
	blocked := a.authFails.failed(src)
	attrs := []any{"addr", src.String(), "method", methodLabel(r.Method), "path", truncate(r.URL.Path), "reason", reason}
	if blocked {
		a.log.Warn("authentication failed; refusing this address until it has waited", append(attrs, "retryAfter", a.cfg.AuthFailureRefill)...)
		return
	}
	a.log.Warn("authentication failed", attrs...)
}
