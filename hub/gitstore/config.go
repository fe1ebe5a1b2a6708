package gitstore

import (
	"fmt"
	"net/url"
	"strings"
	"time"
)

// Defaults of Config, in one place.
const (
	// DefaultBranch is the branch holding desired state.
	DefaultBranch = "main"
	// DefaultUsername is the basic-auth user sent with a Password when Username is empty
	// (GitHub, GitLab and Gitea accept any user name with an access token).
	DefaultUsername = "git"
	// DefaultMaxAttempts bounds the pushes of one write.
	DefaultMaxAttempts = 5
	// DefaultNetworkTimeout bounds one fetch or push.
	DefaultNetworkTimeout = 30 * time.Second
	// DefaultHistoryLimit is History's limit when the caller passes 0.
	DefaultHistoryLimit = 50
	// MaxHistoryLimit is the largest limit History accepts.
	MaxHistoryLimit = 1000
	// DefaultMaxHistoryWalk bounds the commits History and Rollback look at.
	DefaultMaxHistoryWalk = 10000
	// DefaultMaxPacks is the number of pack files in the local clone above which
	// Refresh repacks it (every fetch that brings objects adds one).
	DefaultMaxPacks = 50
)

// defaultCommitter is the committer of every commit when Config.Committer is
// empty; the author is always the caller.
func defaultCommitter() Author { return Author{Name: "Outpost hub", Email: "hub@outpost.invalid"} }

// Config configures a Store. The zero value of every field but Dir is valid.
type Config struct {
	// URL is the remote GitOps repository, http:// or https://. Empty selects the
	// embedded repository: a bare repository in Dir that the hub creates, seeds
	// and serves to agents itself (see internal/gitserve). Credentials in the URL's
	// userinfo are moved to Username/Password and never stored on disk.
	URL string
	// Branch is the branch holding desired state. Default DefaultBranch.
	Branch string
	// Username for HTTP basic auth to URL. Default DefaultUsername when Password is set.
	Username string
	// Password (or access token) for HTTP basic auth to URL. Never logged.
	Password string
	// BearerToken, when set, is sent as "Authorization: Bearer" instead of basic
	// auth. Never logged.
	BearerToken string
	// Dir is where the repository lives: the embedded bare repository, or the local
	// bare clone of URL (a cache; it holds no remote URL or credentials). Required.
	Dir string
	// Seed is a directory whose files become the first commit of the embedded
	// repository when Dir holds no repository yet; empty gives an empty first
	// commit. Every cluster of the seed must load with sync/repo. Unused with URL.
	Seed string
	// Committer is the committer of every commit; the author is the API caller.
	// Default "Outpost hub <hub@outpost.invalid>".
	Committer Author
	// MaxAttempts bounds the pushes of one write when the remote keeps moving
	// (non-fast-forward: fetch, re-apply the change on the new head, push again).
	// Default DefaultMaxAttempts.
	MaxAttempts int
	// NetworkTimeout bounds one fetch or one push. Default DefaultNetworkTimeout.
	NetworkTimeout time.Duration
	// MaxHistoryWalk bounds the commits History and Rollback walk back through.
	// Default DefaultMaxHistoryWalk.
	MaxHistoryWalk int
	// MaxPacks is the number of pack files in the local clone of URL above which
	// Refresh repacks it into one. Default DefaultMaxPacks.
	MaxPacks int
	// HeadChanged, when set, is called with the old and new head after the head
	// moved (a write, or a fetch that brought commits made elsewhere). It runs on
	// the caller's goroutine after the store's lock is released; the hub uses it,
	// with Changed, to wake the long-polls of the affected clusters.
	HeadChanged func(oldRev, newRev string)
}

// withDefaults returns c with every unset field set to its default, and the
// credentials of URL's userinfo moved to Username/Password.
func (c Config) withDefaults() (Config, error) {
	if c.Dir == "" {
		return c, &ValidationError{Field: InputDir, Msg: "must be set"}
	}
	if c.Branch == "" {
		c.Branch = DefaultBranch
	}
	if c.Committer == (Author{}) {
		c.Committer = defaultCommitter()
	}
	if err := c.Committer.validate(InputCommitterName, InputCommitterEmail); err != nil {
		return c, err
	}
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = DefaultMaxAttempts
	}
	if c.NetworkTimeout <= 0 {
		c.NetworkTimeout = DefaultNetworkTimeout
	}
	if c.MaxHistoryWalk <= 0 {
		c.MaxHistoryWalk = DefaultMaxHistoryWalk
	}
	if c.MaxPacks <= 0 {
		c.MaxPacks = DefaultMaxPacks
	}
	if c.URL != "" {
		u, err := url.Parse(c.URL)
		if err != nil {
			return c, &ValidationError{Field: InputURL, Msg: "not a URL: " + RedactURL(c.URL)}
		}
		if u.Scheme != "http" && u.Scheme != "https" {
			return c, &ValidationError{Field: InputURL, Msg: fmt.Sprintf("scheme %q is not supported (http, https)", u.Scheme)}
		}
		if u.User != nil {
			if c.Username == "" {
				c.Username = u.User.Username()
			}
			if p, ok := u.User.Password(); ok && c.Password == "" {
				c.Password = p
			}
			u.User = nil
			c.URL = u.String()
		}
	}
	if c.Password != "" && c.Username == "" {
		c.Username = DefaultUsername
	}
	return c, nil
}

// RedactURL returns raw with the password of its userinfo replaced by "xxxxx",
// for logs and errors. A string that does not parse as a URL is returned with
// everything up to the last '@' before the path removed.
func RedactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		if i := strings.LastIndex(raw, "@"); i >= 0 {
			return "xxxxx@" + raw[i+1:]
		}
		return raw
	}
	return u.Redacted()
}
