package chart

import (
	"bytes"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/clearsign"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	"helm.sh/helm/v4/pkg/provenance"
	"helm.sh/helm/v4/pkg/registry"
)

// newKey generates a PGP signing key (Ed25519: fast).
func newKey(t *testing.T, name string) *openpgp.Entity {
	t.Helper()
	e, err := openpgp.NewEntity(name, "test", strings.ToLower(name)+"@example.com", &packet.Config{Algorithm: packet.PubKeyAlgoEdDSA})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// keyringFile writes the public keys of es to a file, armored or binary.
func keyringFile(t *testing.T, armored bool, es ...*openpgp.Entity) string {
	t.Helper()
	var buf bytes.Buffer
	for _, e := range es {
		w := io.WriteCloser(nopCloser{&buf})
		if armored {
			var err error
			if w, err = armor.Encode(&buf, openpgp.PublicKeyType, nil); err != nil {
				t.Fatal(err)
			}
		}
		if err := e.Serialize(w); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if armored {
			buf.WriteString("\n")
		}
	}
	file := filepath.Join(t.TempDir(), "keyring")
	if err := os.WriteFile(file, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return file
}

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }

func loadKeyring(t *testing.T, es ...*openpgp.Entity) *Keyring {
	t.Helper()
	k, err := LoadKeyring(keyringFile(t, false, es...))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// sign makes the provenance file of archive under name, as `helm package --sign`.
func sign(t *testing.T, e *openpgp.Entity, archive []byte, name string) []byte {
	t.Helper()
	prov, err := (&provenance.Signatory{Entity: e}).ClearSign(archive, name, []byte("apiVersion: v2\nname: web\nversion: 1.0.0\n"))
	if err != nil {
		t.Fatal(err)
	}
	return []byte(prov)
}

// served is one chart version of provRepo: its archive and provenance file (nil:
// 404; provStatus, when set, answers the .prov with that status).
type served struct {
	archive, prov []byte
	provStatus    int
}

// provRepo serves index.yaml, web-<v>.tgz and web-<v>.tgz.prov, requiring basic
// auth user:pw for all of them; gets counts every request, provGets the .prov ones.
func provRepo(t *testing.T, charts map[string]served, gets, provGets *atomic.Int32) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	var index strings.Builder
	index.WriteString("apiVersion: v1\nentries:\n  web:\n")
	for v, c := range charts {
		index.WriteString("    - version: " + v + "\n      urls: [charts/web-" + v + ".tgz]\n      digest: " + strings.TrimPrefix(digestOf(c.archive), "sha256:") + "\n")
		mux.HandleFunc("/charts/web-"+v+".tgz", func(w http.ResponseWriter, r *http.Request) { w.Write(c.archive) })
		mux.HandleFunc("/charts/web-"+v+".tgz.prov", func(w http.ResponseWriter, r *http.Request) {
			provGets.Add(1)
			switch {
			case c.provStatus != 0:
				http.Error(w, "down", c.provStatus)
			case c.prov == nil:
				http.NotFound(w, r)
			default:
				w.Write(c.prov)
			}
		})
	}
	mux.HandleFunc("/index.yaml", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(index.String())) })
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gets.Add(1)
		if u, p, ok := r.BasicAuth(); !ok || u != "user" || p != "pw" {
			http.Error(w, "who are you", http.StatusUnauthorized)
			return
		}
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// cachedArchives lists the archives in a cache directory.
func cachedArchives(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*.tgz"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestFetchVerifyHTTP(t *testing.T) {
	signer, mallory := newKey(t, "Charts"), newKey(t, "Mallory")
	v1 := webChart(t, "1.0.0")
	good := sign(t, signer, v1, "web-1.0.0.tgz")
	tampered := tgz(t, entry{name: "web/Chart.yaml", body: "apiVersion: v2\nname: web\nversion: 1.0.0\n"},
		entry{name: "web/templates/evil.yaml", body: "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: evil}\n"})
	keyring := loadKeyring(t, signer)
	armoredKeyring, err := LoadKeyring(keyringFile(t, true, mallory, signer))
	if err != nil {
		t.Fatal(err)
	}
	tests := map[string]struct {
		chart    served
		verify   bool // app.yaml's helm.verify
		policy   VerifyPolicy
		keyring  *Keyring
		want     VerifyReason // "": success
		wantMsg  string
		fetchErr bool // a *FetchError (transient), not a *VerifyError
		provGets int32
	}{
		"valid signature":                  {chart: served{archive: v1, prov: good}, verify: true, keyring: keyring, provGets: 1},
		"valid signature, armored keyring": {chart: served{archive: v1, prov: good}, verify: true, keyring: armoredKeyring, provGets: 1},
		"not required: no .prov asked for": {chart: served{archive: v1}, keyring: keyring},
		"not required, no keyring":         {chart: served{archive: v1}},
		"always verifies an app without verify": {
			chart: served{archive: v1, prov: sign(t, mallory, v1, "web-1.0.0.tgz")}, policy: VerifyAlways, keyring: keyring,
			want: ReasonUnknownKey, wantMsg: "signature made by unknown entity", provGets: 1,
		},
		"always, valid":      {chart: served{archive: v1, prov: good}, policy: VerifyAlways, keyring: keyring, provGets: 1},
		"missing .prov":      {chart: served{archive: v1}, verify: true, keyring: keyring, want: ReasonMissing, wantMsg: "web-1.0.0.tgz.prov: 404 Not Found", provGets: 1},
		"no keyring":         {chart: served{archive: v1, prov: good}, verify: true, want: ReasonNoKeyring, wantMsg: "no --chart-keyring"},
		"always, no keyring": {chart: served{archive: v1, prov: good}, policy: VerifyAlways, want: ReasonNoKeyring},
		"wrong key": {
			chart: served{archive: v1, prov: sign(t, mallory, v1, "web-1.0.0.tgz")}, verify: true, keyring: keyring,
			want: ReasonUnknownKey, wantMsg: "keyring", provGets: 1,
		},
		"tampered archive": {
			chart: served{archive: tampered, prov: good}, verify: true, keyring: keyring,
			want: ReasonMismatch, wantMsg: "web-1.0.0.tgz is " + digestOf(tampered) + ", the provenance file says " + digestOf(v1), provGets: 1,
		},
		"provenance of another file": {
			chart: served{archive: v1, prov: sign(t, signer, v1, "web-9.9.9.tgz")}, verify: true, keyring: keyring,
			want: ReasonMismatch, wantMsg: "no checksum for web-1.0.0.tgz", provGets: 1,
		},
		"altered signed text": {
			chart:  served{archive: v1, prov: bytes.Replace(good, []byte("version: 1.0.0"), []byte("version: 6.6.6"), 1)},
			verify: true, keyring: keyring, want: ReasonBadSignature, provGets: 1,
		},
		"malformed .prov": {
			chart: served{archive: v1, prov: []byte("<html>a login page</html>")}, verify: true, keyring: keyring,
			want: ReasonMalformed, wantMsg: "no PGP clearsigned message", provGets: 1,
		},
		"signed text without checksums": {
			chart: served{archive: v1, prov: func() []byte {
				var buf bytes.Buffer
				w, err := clearsignEncode(&buf, signer)
				if err != nil {
					t.Fatal(err)
				}
				w.Write([]byte("name: web\n"))
				w.Close()
				return buf.Bytes()
			}()}, verify: true, keyring: keyring, want: ReasonMalformed, wantMsg: "message block must have at least two parts", provGets: 1,
		},
		"oversized .prov": {
			chart: served{archive: v1, prov: bytes.Repeat([]byte("x"), MaxProvSize+1)}, verify: true, keyring: keyring,
			want: ReasonMalformed, wantMsg: "response is more than the size limit", provGets: 1,
		},
		".prov server error is a transient fetch error": {
			chart: served{archive: v1, provStatus: http.StatusServiceUnavailable}, verify: true, keyring: keyring,
			fetchErr: true, wantMsg: "provenance file: GET", provGets: 1,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var gets, provGets atomic.Int32
			srv := provRepo(t, map[string]served{"1.0.0": tc.chart}, &gets, &provGets)
			cache := t.TempDir()
			f, err := NewFetcher(FetcherConfig{CacheDir: cache, Credentials: creds, Keyring: tc.keyring, Verify: tc.policy})
			if err != nil {
				t.Fatal(err)
			}
			ref := Ref{Repo: srv.URL, Chart: "web", Version: "1.0.0", Verify: tc.verify}
			data, err := f.Fetch(t.Context(), ref)
			if got := provGets.Load(); got != tc.provGets {
				t.Errorf(".prov requested %d times, want %d", got, tc.provGets)
			}
			if tc.want == "" && !tc.fetchErr {
				if err != nil || !bytes.Equal(data, v1) {
					t.Fatalf("fetch: %v", err)
				}
				return
			}
			if len(cachedArchives(t, cache)) != 0 {
				t.Error("a chart that failed verification was cached")
			}
			var ve *VerifyError
			var fe *FetchError
			if tc.fetchErr {
				if !errors.As(err, &fe) || errors.As(err, &ve) || !strings.Contains(err.Error(), tc.wantMsg) {
					t.Fatalf("err = %v, want a *FetchError containing %q", err, tc.wantMsg)
				}
				return
			}
			if !errors.As(err, &ve) || errors.As(err, &fe) || ve.Reason != tc.want || !strings.Contains(err.Error(), tc.wantMsg) ||
				!strings.HasPrefix(err.Error(), "verify chart "+srv.URL+" web 1.0.0: "+string(tc.want)+": ") {
				t.Fatalf("err = %v, want a *VerifyError %q containing %q", err, tc.want, tc.wantMsg)
			}
			if tc.want == ReasonNoKeyring && gets.Load() != 0 {
				t.Errorf("%d requests made with no keyring to verify with", gets.Load())
			}
		})
	}
}

// clearsignEncode starts a clearsigned message by e, for a hand-made provenance file.
func clearsignEncode(w io.Writer, e *openpgp.Entity) (io.WriteCloser, error) {
	return clearsign.Encode(w, e.PrivateKey, nil)
}

func TestFetchVerifyOCI(t *testing.T) {
	signer, mallory := newKey(t, "Charts"), newKey(t, "Mallory")
	srv := httptest.NewServer(ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")
	push, err := registry.NewClient(registry.ClientOptPlainHTTP(), registry.ClientOptCredentialsFile(t.TempDir()+"/creds.json"))
	if err != nil {
		t.Fatal(err)
	}
	charts := map[string][]byte{}
	for version, prov := range map[string]func([]byte) []byte{
		"1.0.0": func(a []byte) []byte { return sign(t, signer, a, "web-1.0.0.tgz") },
		"1.1.0": nil,
		"1.2.0": func(a []byte) []byte { return sign(t, mallory, a, "web-1.2.0.tgz") },
		"1.3.0": func(a []byte) []byte { return sign(t, signer, webChart(t, "1.3.0-other"), "web-1.3.0.tgz") },
	} {
		charts[version] = webChart(t, version)
		var opts []registry.PushOption
		if prov != nil {
			opts = append(opts, registry.PushOptProvData(prov(charts[version])))
		}
		if _, err := push.Push(charts[version], host+"/charts/web:"+version, opts...); err != nil {
			t.Fatal(err)
		}
	}
	cache := t.TempDir()
	f, err := NewFetcher(FetcherConfig{CacheDir: cache, PlainHTTPHosts: []string{host}, Keyring: loadKeyring(t, signer)})
	if err != nil {
		t.Fatal(err)
	}
	oci := "oci://" + host + "/charts/web"
	for version, want := range map[string]VerifyReason{
		"1.1.0": ReasonMissing, "1.2.0": ReasonUnknownKey, "1.3.0": ReasonMismatch,
	} {
		_, err := f.Fetch(t.Context(), Ref{OCI: oci, Version: version, Verify: true})
		var ve *VerifyError
		if !errors.As(err, &ve) || ve.Reason != want || !strings.Contains(err.Error(), "verify chart "+oci+":"+version+": ") {
			t.Errorf("%s: err = %v, want a *VerifyError %q", version, err, want)
		}
	}
	// Unverified, 1.1.0 (no provenance layer) is fine.
	if _, err := f.Fetch(t.Context(), Ref{OCI: oci, Version: "1.1.0"}); err != nil {
		t.Errorf("1.1.0 unverified: %v", err)
	}
	ref := Ref{OCI: oci, Version: "1.0.0", Verify: true}
	data, err := f.Fetch(t.Context(), ref)
	if err != nil || !bytes.Equal(data, charts["1.0.0"]) {
		t.Fatalf("1.0.0 verified: %v", err)
	}
	srv.Close() // the registry is gone: the cache answers, verified again from the cached .prov
	if _, err := f.Fetch(t.Context(), ref); err != nil {
		t.Errorf("cached verified fetch: %v", err)
	}
	if _, err := f.Fetch(t.Context(), Ref{OCI: oci, Version: "1.1.0", Verify: true}); err == nil {
		t.Error("1.1.0, cached unverified, was served to an app that requires verification")
	}
}

func TestFetchVerifyCache(t *testing.T) {
	signer, mallory := newKey(t, "Charts"), newKey(t, "Mallory")
	v1 := webChart(t, "1.0.0")
	var gets, provGets atomic.Int32
	srv := provRepo(t, map[string]served{"1.0.0": {archive: v1, prov: sign(t, signer, v1, "web-1.0.0.tgz")}}, &gets, &provGets)
	cache := t.TempDir()
	fetcher := func(k *Keyring) *Fetcher {
		f, err := NewFetcher(FetcherConfig{CacheDir: cache, Credentials: creds, Keyring: k})
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	f := fetcher(loadKeyring(t, signer))
	ref := Ref{Repo: srv.URL, Chart: "web", Version: "1.0.0"}
	if _, err := f.Fetch(t.Context(), ref); err != nil || provGets.Load() != 0 {
		t.Fatalf("unverified fetch: %v, %d .prov requests", err, provGets.Load())
	}
	// Cached unverified, then required: fetched again with its .prov and verified.
	ref.Verify = true
	n := gets.Load()
	if data, err := f.Fetch(t.Context(), ref); err != nil || !bytes.Equal(data, v1) || provGets.Load() != 1 || gets.Load() == n {
		t.Fatalf("verified fetch over an unverified cache entry: %v, %d .prov requests, %d requests", err, provGets.Load(), gets.Load()-n)
	}
	// Now cached verified: no request.
	n = gets.Load()
	if _, err := f.Fetch(t.Context(), ref); err != nil || gets.Load() != n {
		t.Fatalf("verified fetch from the cache: %v, %d requests", err, gets.Load()-n)
	}
	// An archive changed in the cache fails the cached .prov and is fetched again.
	archives := cachedArchives(t, cache)
	if len(archives) != 1 {
		t.Fatalf("cache holds %v", archives)
	}
	if err := os.WriteFile(archives[0], webChart(t, "1.0.0-changed"), 0o600); err != nil {
		t.Fatal(err)
	}
	if data, err := f.Fetch(t.Context(), ref); err != nil || !bytes.Equal(data, v1) || gets.Load() == n {
		t.Fatalf("fetch over a changed cache entry: %v, %d requests", err, gets.Load()-n)
	}
	// The keyring changes (the signer's key removed): the cached chart no longer
	// verifies, nor does the download.
	_, err := fetcher(loadKeyring(t, mallory)).Fetch(t.Context(), ref)
	var ve *VerifyError
	if !errors.As(err, &ve) || ve.Reason != ReasonUnknownKey {
		t.Fatalf("err = %v, want %q", err, ReasonUnknownKey)
	}
}

func TestLoadKeyring(t *testing.T) {
	a, b := newKey(t, "A"), newKey(t, "B")
	write := func(data []byte) string {
		file := filepath.Join(t.TempDir(), "ring")
		if err := os.WriteFile(file, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return file
	}
	concat := func(files ...string) string {
		var all []byte
		for _, f := range files {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			all = append(all, data...)
		}
		return write(all)
	}
	tests := map[string]struct {
		file    string
		keys    int
		wantErr string
	}{
		"binary":                {file: keyringFile(t, false, a, b), keys: 2},
		"armored":               {file: keyringFile(t, true, a), keys: 1},
		"armored, concatenated": {file: concat(keyringFile(t, true, a), keyringFile(t, true, b)), keys: 2},
		// Exports of two Ed25519 public keys by GnuPG 2.2 (gpg --export [--armor],
		// and its pubring.kbx).
		"gpg armored export": {file: "testdata/gpg-two-keys.asc", keys: 2},
		"gpg binary export":  {file: "testdata/gpg-two-keys.gpg", keys: 2},
		"gpg keybox":         {file: "testdata/gpg-two-keys.kbx", keys: 2},
		"missing":            {file: filepath.Join(t.TempDir(), "nope"), wantErr: "no such file"},
		"empty":              {file: write(nil), wantErr: "keyring "},
		"garbage":            {file: write([]byte("not a key at all\n")), wantErr: "keyring "},
		"armored, not a key": {file: write([]byte("-----BEGIN PGP MESSAGE-----\n\nAAAA\n-----END PGP MESSAGE-----\n")), wantErr: "keyring "},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			k, err := LoadKeyring(tc.file)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), tc.file) {
					t.Fatalf("err = %v, want it to name %s and contain %q", err, tc.file, tc.wantErr)
				}
				return
			}
			if err != nil || k.Len() != tc.keys {
				t.Fatalf("keyring: %v, %d keys, want %d", err, k.Len(), tc.keys)
			}
		})
	}
}

func TestParseVerifyPolicy(t *testing.T) {
	for in, want := range map[string]VerifyPolicy{"": VerifyIfRequired, "if-required": VerifyIfRequired, "always": VerifyAlways, "Always": "", "never": "", "true": ""} {
		got, err := ParseVerifyPolicy(in)
		if got != want || (err != nil) != (want == "") {
			t.Errorf("ParseVerifyPolicy(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := NewFetcher(FetcherConfig{CacheDir: t.TempDir(), Verify: "sometimes"}); err == nil || !strings.Contains(err.Error(), `"sometimes" is not a verification policy`) {
		t.Errorf("NewFetcher with a bad policy: %v", err)
	}
}
