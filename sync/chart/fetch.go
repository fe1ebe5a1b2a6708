package chart

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/go-cleanhttp"
	"helm.sh/helm/v4/pkg/registry"
	"oras.land/oras-go/v2/registry/remote/auth"
	sigsyaml "sigs.k8s.io/yaml"
)

// MaxIndexSize is the largest index.yaml of an HTTP chart repository read, in bytes.
const MaxIndexSize = 32 << 20

// Credential is a user name and password (or token) for one host.
type Credential struct {
	// Username is the user name; with a token, any non-empty name the host accepts.
	Username string
	// Password is the password or token.
	Password string
}

// FetcherConfig configures a Fetcher.
type FetcherConfig struct {
	// CacheDir holds downloaded charts, one file per chart, version and digest; required.
	// A chart in the cache is never fetched again.
	CacheDir string
	// Credentials returns the credential for a host ("charts.example.com",
	// "ghcr.io:443"), or ok false for none. It is called for each download; the
	// agent reads files named in its config, never anything from Git. Nil: none.
	Credentials func(host string) (cred Credential, ok bool, err error)
	// PlainHTTPHosts are OCI registries reached over plain HTTP (tests, a registry
	// inside the cluster). Default: none, every registry over HTTPS.
	PlainHTTPHosts []string
	// Limits bound downloads (ArchiveSize) and charts.
	Limits Limits
	// Timeout bounds one download. Default 2m.
	Timeout time.Duration
	// Transport is the HTTP transport; default go-cleanhttp's pooled transport.
	Transport http.RoundTripper
	// Logger receives one line per download; default discards.
	Logger *slog.Logger
	// Keyring holds the keys a chart's provenance file must be signed by; nil: none,
	// and a chart that must be verified fails. It comes from the agent's config
	// (--chart-keyring), never from Git.
	Keyring *Keyring
	// Verify says which charts are verified: VerifyIfRequired (the default) those
	// whose Ref.Verify is set, VerifyAlways every one.
	Verify VerifyPolicy
}

// Fetcher downloads remote charts into a disk cache; it is a render.ChartFetcher.
// It is safe for concurrent use.
type Fetcher struct {
	cfg FetcherConfig
}

// FetchError is a failed download: the render fails, and the app keeps its last
// applied state (nothing is applied or pruned). Retrying may succeed.
type FetchError struct {
	// Ref is the chart.
	Ref Ref
	// Err is the cause.
	Err error
}

func (e *FetchError) Error() string { return fmt.Sprintf("fetch chart %s: %v", e.Ref, e.Err) }

// Unwrap returns the cause.
func (e *FetchError) Unwrap() error { return e.Err }

// NewFetcher returns a Fetcher.
func NewFetcher(cfg FetcherConfig) (*Fetcher, error) {
	if cfg.CacheDir == "" {
		return nil, errors.New("chart fetcher: CacheDir is required")
	}
	if err := os.MkdirAll(cfg.CacheDir, 0o700); err != nil {
		return nil, fmt.Errorf("chart cache %s: %w", cfg.CacheDir, err)
	}
	cfg.Limits = cfg.Limits.WithDefaults()
	if cfg.Timeout <= 0 {
		cfg.Timeout = 2 * time.Minute
	}
	if cfg.Transport == nil {
		cfg.Transport = cleanhttp.DefaultPooledTransport()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	policy, err := ParseVerifyPolicy(string(cfg.Verify))
	if err != nil {
		return nil, fmt.Errorf("chart fetcher: %w", err)
	}
	cfg.Verify = policy
	return &Fetcher{cfg: cfg}, nil
}

// cacheFile is the chart's file in the cache: a hash of everything that names it.
func (f *Fetcher) cacheFile(ref Ref) string {
	h := sha256.Sum256([]byte(strings.Join([]string{ref.Repo, ref.Chart, ref.OCI, ref.Version, ref.Digest}, "\x00")))
	return filepath.Join(f.cfg.CacheDir, ref.Name()+"-"+ref.Version+"-"+hex.EncodeToString(h[:8])+".tgz")
}

// Fetch returns the archive of ref, from the cache when it holds it. When ref.Verify
// is set, or the policy is VerifyAlways, the archive must come with a provenance
// file signed by a key of the keyring that gives the archive's SHA-256; a cached
// archive is verified again against the provenance file cached with it, and one
// cached without it is fetched again with it. Errors are *FetchError (a download
// failed: retrying may help) or *VerifyError (the chart failed verification).
func (f *Fetcher) Fetch(ctx context.Context, ref Ref) ([]byte, error) {
	verify := ref.Verify || f.cfg.Verify == VerifyAlways
	if verify && f.cfg.Keyring == nil {
		return nil, &VerifyError{Ref: ref, Reason: ReasonNoKeyring, Err: errors.New("verification is required (helm.verify or the always policy) but the agent has no --chart-keyring")}
	}
	file := f.cacheFile(ref)
	if data, err := readCapped(file, f.cfg.Limits.ArchiveSize); err == nil {
		if !verify {
			return data, nil
		}
		if f.verifyCached(ref, file, data) {
			return data, nil
		}
	}
	ctx, cancel := context.WithTimeout(ctx, f.cfg.Timeout)
	defer cancel()
	start := time.Now()
	var d *download
	var err error
	if ref.OCI != "" {
		d, err = f.fetchOCI(ctx, ref, verify)
	} else {
		d, err = f.fetchHTTP(ctx, ref, verify)
	}
	if err != nil {
		var ve *VerifyError
		if errors.As(err, &ve) {
			return nil, err
		}
		return nil, &FetchError{Ref: ref, Err: err}
	}
	attrs := []any{"chart", ref.String(), "bytes", len(d.archive), "duration", time.Since(start)}
	if verify {
		v, err := f.cfg.Keyring.Verify(ref, d.archive, d.prov, d.name)
		if err != nil {
			return nil, err
		}
		attrs = append(attrs, "verified", true, "signedBy", v.SignedBy)
	}
	if err := writeAtomic(file, d.archive); err != nil {
		f.cfg.Logger.Warn("chart not cached", "chart", ref.String(), "err", err)
	} else if verify {
		if err := writeProvenance(file, d.name, d.prov); err != nil {
			f.cfg.Logger.Warn("chart provenance not cached", "chart", ref.String(), "err", err)
		}
	}
	f.cfg.Logger.Info("chart fetched", attrs...)
	return d.archive, nil
}

// download is a fetched archive, with its provenance file when asked for.
type download struct {
	archive []byte
	// name is the archive's file name, which the provenance file gives the checksum
	// of: the last element of its URL (HTTP), <chart>-<version>.tgz (OCI).
	name string
	// prov is the provenance file.
	prov []byte
}

// provMissing is the *VerifyError of a chart whose provenance file is not there.
func provMissing(ref Ref, format string, args ...any) error {
	return &VerifyError{Ref: ref, Reason: ReasonMissing, Err: fmt.Errorf(format, args...)}
}

// cachedProvenance is the file beside a cached archive holding the provenance file it
// was verified with.
type cachedProvenance struct {
	// Name is the archive's file name the provenance file names.
	Name string `json:"name"`
	// Prov is the provenance file (base64 in JSON: kept byte for byte).
	Prov []byte `json:"prov"`
}

func provenanceFile(archiveFile string) string { return archiveFile + ".prov.json" }

func writeProvenance(archiveFile, name string, prov []byte) error {
	data, err := json.Marshal(cachedProvenance{Name: name, Prov: prov})
	if err != nil {
		return err
	}
	return writeAtomic(provenanceFile(archiveFile), data)
}

// verifyCached verifies a cached archive against the provenance file cached with it,
// with the keyring of now; false (fetch it again) when there is none or it fails.
func (f *Fetcher) verifyCached(ref Ref, file string, data []byte) bool {
	raw, err := readCapped(provenanceFile(file), 2*MaxProvSize)
	if err != nil {
		f.cfg.Logger.Info("chart cached without its provenance file: fetching it again to verify it", "chart", ref.String())
		return false
	}
	var cp cachedProvenance
	if err := json.Unmarshal(raw, &cp); err != nil {
		f.cfg.Logger.Warn("cached provenance file unreadable: fetching the chart again", "chart", ref.String(), "err", err)
		return false
	}
	if _, err := f.cfg.Keyring.Verify(ref, data, cp.Prov, cp.Name); err != nil {
		f.cfg.Logger.Warn("cached chart fails verification: fetching it again", "chart", ref.String(), "err", err)
		return false
	}
	return true
}

func readCapped(file string, limit int64) ([]byte, error) {
	fh, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	data, err := io.ReadAll(io.LimitReader(fh, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s: over the size limit", file)
	}
	return data, nil
}

func writeAtomic(file string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(file), ".chart-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), file)
}

func digestOf(data []byte) string {
	sum := sha256.Sum256(data)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// httpClient returns a client whose responses are cut at limit bytes.
func (f *Fetcher) httpClient(limit int64) *http.Client {
	return &http.Client{Transport: &limitTransport{next: f.cfg.Transport, limit: limit}, Timeout: f.cfg.Timeout}
}

// errTooLarge is a response over its size limit.
var errTooLarge = errors.New("more than the size limit")

// limitTransport fails a response body that goes past limit bytes.
type limitTransport struct {
	next  http.RoundTripper
	limit int64
}

func (t *limitTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	if resp.ContentLength > t.limit {
		resp.Body.Close()
		return nil, fmt.Errorf("%s: response of %d bytes is more than the limit of %d: %w", req.URL.Redacted(), resp.ContentLength, t.limit, errTooLarge)
	}
	resp.Body = &limitedBody{rc: resp.Body, left: t.limit, url: req.URL.Redacted()}
	return resp, nil
}

type limitedBody struct {
	rc   io.ReadCloser
	left int64
	url  string
}

func (b *limitedBody) Read(p []byte) (int, error) {
	if b.left < 0 {
		return 0, fmt.Errorf("%s: response is %w", b.url, errTooLarge)
	}
	if int64(len(p)) > b.left+1 {
		p = p[:b.left+1]
	}
	n, err := b.rc.Read(p)
	b.left -= int64(n)
	if b.left < 0 {
		return n, fmt.Errorf("%s: response is %w", b.url, errTooLarge)
	}
	return n, err
}

func (b *limitedBody) Close() error { return b.rc.Close() }

// repoIndex is the part of an HTTP chart repository's index.yaml Outpost reads.
type repoIndex struct {
	Entries map[string][]struct {
		Version string   `json:"version"`
		URLs    []string `json:"urls"`
		Digest  string   `json:"digest"`
	} `json:"entries"`
}

// fetchHTTP reads index.yaml, finds the exact version and downloads its archive,
// and with prov its provenance file (the archive's URL + ".prov", as Helm has it).
func (f *Fetcher) fetchHTTP(ctx context.Context, ref Ref, prov bool) (*download, error) {
	base, err := url.Parse(strings.TrimSuffix(ref.Repo, "/") + "/")
	if err != nil {
		return nil, err
	}
	indexData, err := f.get(ctx, base, base.ResolveReference(&url.URL{Path: "index.yaml"}), MaxIndexSize)
	if err != nil {
		return nil, err
	}
	var idx repoIndex
	if err := sigsyaml.Unmarshal(indexData, &idx); err != nil {
		return nil, fmt.Errorf("index.yaml: %w", err)
	}
	versions := idx.Entries[ref.Chart]
	if len(versions) == 0 {
		return nil, fmt.Errorf("index.yaml has no chart %q", ref.Chart)
	}
	var have []string
	for _, v := range versions {
		if strings.TrimPrefix(v.Version, "v") != strings.TrimPrefix(ref.Version, "v") {
			have = append(have, v.Version)
			continue
		}
		if len(v.URLs) == 0 {
			return nil, fmt.Errorf("index.yaml: chart %s %s has no URL", ref.Chart, v.Version)
		}
		u, err := base.Parse(v.URLs[0])
		if err != nil {
			return nil, fmt.Errorf("index.yaml: chart %s %s: URL %q: %w", ref.Chart, v.Version, v.URLs[0], err)
		}
		if u.Scheme != "https" && u.Scheme != "http" {
			return nil, fmt.Errorf("index.yaml: chart %s %s: URL %q is not http(s)", ref.Chart, v.Version, v.URLs[0])
		}
		data, err := f.get(ctx, base, u, f.cfg.Limits.ArchiveSize)
		if err != nil {
			return nil, err
		}
		got := digestOf(data)
		if ref.Digest != "" && got != ref.Digest {
			return nil, fmt.Errorf("digest mismatch: the archive is %s, app.yaml pins %s", got, ref.Digest)
		}
		if v.Digest != "" && "sha256:"+strings.TrimPrefix(v.Digest, "sha256:") != got {
			return nil, fmt.Errorf("digest mismatch: the archive is %s, index.yaml says %s", got, v.Digest)
		}
		d := &download{archive: data, name: path.Base(u.Path)}
		if !prov {
			return d, nil
		}
		pu := *u
		pu.Path += ".prov"
		if pu.RawPath != "" {
			pu.RawPath += ".prov"
		}
		switch d.prov, err = f.get(ctx, base, &pu, MaxProvSize); {
		case notFound(err):
			return nil, provMissing(ref, "%w", err)
		case errors.Is(err, errTooLarge):
			return nil, &VerifyError{Ref: ref, Reason: ReasonMalformed, Err: err}
		case err != nil:
			return nil, fmt.Errorf("provenance file: %w", err)
		}
		return d, nil
	}
	slices.Sort(have)
	if len(have) > 10 {
		have = append(have[len(have)-10:], "…")
	}
	return nil, fmt.Errorf("index.yaml has no version %s of chart %q (it has %s)", ref.Version, ref.Chart, strings.Join(have, ", "))
}

// get downloads u with at most limit bytes, with the repository's credential when
// u is on the repository's host (never to another host).
func (f *Fetcher) get(ctx context.Context, base, u *url.URL, limit int64) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	if u.Host == base.Host && f.cfg.Credentials != nil {
		cred, ok, err := f.cfg.Credentials(u.Host)
		if err != nil {
			return nil, fmt.Errorf("credentials for %s: %w", u.Host, err)
		}
		if ok {
			req.SetBasicAuth(cred.Username, cred.Password)
		}
	}
	resp, err := f.httpClient(limit).Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, &statusError{url: u.Redacted(), code: resp.StatusCode, status: resp.Status}
	}
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", u.Redacted(), err)
	}
	return data, nil
}

// statusError is an HTTP response other than 200 OK.
type statusError struct {
	url    string
	code   int
	status string
}

func (e *statusError) Error() string { return fmt.Sprintf("GET %s: %s", e.url, e.status) }

// notFound reports whether err is a 404 or 410 response.
func notFound(err error) bool {
	var se *statusError
	return errors.As(err, &se) && (se.code == http.StatusNotFound || se.code == http.StatusGone)
}

// fetchOCI pulls the chart with Helm's registry client, with only the configured
// credential (never the agent's Docker or Helm credential files).
//
// With prov it pulls the provenance layer too (Helm's
// application/vnd.cncf.helm.chart.provenance.v1.prov), whose checksum is of
// <chart>-<version>.tgz, the name `helm package` gave it.
func (f *Fetcher) fetchOCI(ctx context.Context, ref Ref, prov bool) (*download, error) {
	target := strings.TrimPrefix(ref.OCI, "oci://")
	host, _, _ := strings.Cut(target, "/")
	hc := f.httpClient(f.cfg.Limits.ArchiveSize)
	authorizer := &auth.Client{Client: hc, Credential: func(context.Context, string) (auth.Credential, error) {
		if f.cfg.Credentials == nil {
			return auth.EmptyCredential, nil
		}
		cred, ok, err := f.cfg.Credentials(host)
		if err != nil || !ok {
			return auth.EmptyCredential, err
		}
		return auth.Credential{Username: cred.Username, Password: cred.Password}, nil
	}}
	opts := []registry.ClientOption{
		registry.ClientOptHTTPClient(hc),
		registry.ClientOptAuthorizer(*authorizer),
		registry.ClientOptCredentialsFile(filepath.Join(f.cfg.CacheDir, ".no-registry-credentials.json")),
	}
	if slices.Contains(f.cfg.PlainHTTPHosts, host) {
		opts = append(opts, registry.ClientOptPlainHTTP())
	}
	client, err := registry.NewClient(opts...)
	if err != nil {
		return nil, err
	}
	pullRef := target + ":" + ref.Version
	if ref.Digest != "" {
		pullRef += "@" + ref.Digest
	}
	type result struct {
		res *registry.PullResult
		err error
	}
	done := make(chan result, 1)
	go func() {
		res, err := client.Pull(pullRef, registry.PullOptWithChart(true), registry.PullOptWithProv(prov), registry.PullOptIgnoreMissingProv(true))
		done <- result{res, err}
	}()
	var r result
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case r = <-done:
	}
	if r.err != nil {
		return nil, r.err
	}
	if ref.Digest != "" && r.res.Manifest.Digest != ref.Digest {
		return nil, fmt.Errorf("digest mismatch: the manifest is %s, app.yaml pins %s", r.res.Manifest.Digest, ref.Digest)
	}
	if int64(len(r.res.Chart.Data)) > f.cfg.Limits.ArchiveSize {
		return nil, fmt.Errorf("chart archive is %d bytes, more than the limit of %d", len(r.res.Chart.Data), f.cfg.Limits.ArchiveSize)
	}
	d := &download{archive: r.res.Chart.Data, name: ref.Name() + "-" + ref.Version + ".tgz"}
	if prov {
		if r.res.Prov == nil || r.res.Prov.Data == nil {
			return nil, provMissing(ref, "the manifest %s has no %s layer", r.res.Manifest.Digest, registry.ProvLayerMediaType)
		}
		d.prov = r.res.Prov.Data
	}
	return d, nil
}
