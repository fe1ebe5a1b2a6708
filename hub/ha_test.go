package hub

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/outpost-gitops/outpost/agent/hubclient"
	apiv1 "github.com/outpost-gitops/outpost/api/v1"
	"github.com/outpost-gitops/outpost/hub/ha"
	"github.com/outpost-gitops/outpost/internal/gittest"
	"github.com/outpost-gitops/outpost/internal/hubapi"
	"github.com/outpost-gitops/outpost/internal/pgtest"
)

var (
	pgOnce sync.Once
	pgSrv  *pgtest.Server
	pgErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if pgSrv != nil {
		_ = pgSrv.Stop()
	}
	os.Exit(code)
}

// postgres returns a new database on the package's PostgreSQL server, started by
// the first test that needs one.
func postgres(t *testing.T) string {
	t.Helper()
	pgOnce.Do(func() { pgSrv, pgErr = pgtest.Start(context.Background()) })
	if pgErr != nil {
		t.Fatal(pgErr)
	}
	return pgSrv.NewDatabase(t)
}

// remoteRepo starts a Git server holding the httpapi seed.
func remoteRepo(t *testing.T) *gittest.Server {
	t.Helper()
	files := map[string]string{}
	root := filepath.Join("httpapi", "testdata", "seed")
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		rel, _ := filepath.Rel(root, p)
		files[filepath.ToSlash(rel)] = string(data)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := gittest.New(t)
	srv.Commit(t, files, "seed", "Seeder <seed@example.com>")
	return srv
}

// replica starts a hub replica on the PostgreSQL store dsn and the remote repository.
func replica(t *testing.T, dsn string, git *gittest.Server, mutate ...func(*Config)) *runningHub {
	t.Helper()
	return startHub(t, t.TempDir(), append([]func(*Config){func(c *Config) {
		c.Store, c.GitURL, c.GitSeedDir = dsn, git.URL(), ""
		c.GitPollInterval = 0
	}}, mutate...)...)
}

func adminClient(t *testing.T, h *runningHub) *hubapi.Client {
	t.Helper()
	c, err := hubapi.New(h.url, adminToken, hubapi.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestReplicasShareStoreAndWakeEachOthersAgents: two replicas on one PostgreSQL store
// and one remote repository serve one fleet: a cluster registered through A is seen by
// B, a report through B is read through A, and a commit through A wakes an agent
// long-polling B within 100 ms.
func TestReplicasShareStoreAndWakeEachOthersAgents(t *testing.T) {
	dsn, git := postgres(t), remoteRepo(t)
	a, b := replica(t, dsn, git), replica(t, dsn, git)
	ctx := t.Context()
	ca, cb := adminClient(t, a), adminClient(t, b)
	reg, err := ca.RegisterCluster(ctx, apiv1.RegisterClusterRequest{Name: "prod-eu"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cb.GetCluster(ctx, "prod-eu"); err != nil {
		t.Fatalf("replica B does not know the cluster registered through A: %v", err)
	}
	agentB, err := hubapi.New(b.url, reg.Token, hubapi.Options{})
	if err != nil {
		t.Fatal(err)
	}
	rep := &apiv1.StatusReport{Cluster: "prod-eu", Agent: apiv1.AgentInfo{ID: "agent-1"}, SentAt: time.Now().UTC(),
		Apps: []apiv1.AppStatus{{App: "web", Generation: apiv1.Generation{Epoch: time.Now().UnixMilli(), Sequence: 1},
			Version: "1.4.1", Phase: apiv1.PhaseSynced, Health: apiv1.Health{Status: apiv1.HealthCurrent}, LastSyncedAt: time.Now().UTC()}}}
	if _, err := agentB.Report(ctx, rep); err != nil {
		t.Fatal(err)
	}
	m, err := ca.Matrix(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if i := slices.IndexFunc(m.Clusters, func(r apiv1.MatrixRow) bool { return r.Cluster == "prod-eu" }); i < 0 || m.Clusters[i].Apps["web"].Version != "1.4.1" {
		t.Fatalf("replica A does not show the report made through B: %+v", m.Clusters)
	}

	since, err := agentB.Desired(ctx, "prod-eu", "")
	if err != nil {
		t.Fatal(err)
	}
	var took []time.Duration
	for i, version := range []string{"1.5.0", "1.5.1", "1.5.2", "1.5.3", "1.5.4", "1.5.5", "1.5.6"} {
		woke := make(chan time.Time, 1)
		var got *apiv1.DesiredRevision
		go func() {
			got, err = agentB.Desired(ctx, "prod-eu", since.Revision)
			woke <- time.Now()
		}()
		time.Sleep(100 * time.Millisecond) // the long-poll is held by B
		res, err := ca.SetVersion(ctx, "prod-eu", "web", version, hubapi.WriteOptions{})
		if err != nil {
			t.Fatal(err)
		}
		committed := time.Now()
		select {
		case at := <-woke:
			if err != nil || !got.Changed || got.Revision != res.Revision {
				t.Fatalf("commit %d: long-poll on B answered %+v, %v; want changed to %s", i, got, err, res.Revision)
			}
			took = append(took, at.Sub(committed))
			since = got
		case <-time.After(5 * time.Second):
			t.Fatalf("commit %d through A did not wake the agent long-polling B", i)
		}
	}
	// The median, so that one commit slowed by a loaded machine does not fail the test;
	// each must stay well under the long-poll's hold.
	slices.Sort(took)
	t.Logf("wake-ups of an agent on B after a commit through A: %v", took)
	if median := took[len(took)/2]; median > 100*time.Millisecond {
		t.Errorf("a commit through A woke the agent on B after %s (median), want within 100 ms", median)
	}
	if slowest := took[len(took)-1]; slowest > time.Second {
		t.Errorf("a commit through A woke the agent on B after %s, want well within 1 s", slowest)
	}
}

// TestReplicasWriteConcurrently: two replicas writing to the remote repository at
// once lose no write: a push that lost the race is retried on the new head.
func TestReplicasWriteConcurrently(t *testing.T) {
	dsn, git := postgres(t), remoteRepo(t)
	hubs := []*runningHub{replica(t, dsn, git), replica(t, dsn, git)}
	ctx := t.Context()
	type write struct{ cluster, app, version string }
	var writes []write
	for i := range 6 {
		writes = append(writes, write{[]string{"prod-eu", "staging"}[i%2], []string{"web", "api", "worker"}[i%3], fmt.Sprintf("9.%d.0", i)})
	}
	var wg sync.WaitGroup
	for i, w := range writes {
		c := adminClient(t, hubs[i%2])
		wg.Go(func() {
			if _, err := c.SetVersion(ctx, w.cluster, w.app, w.version, hubapi.WriteOptions{}); err != nil {
				t.Errorf("set %s/%s to %s through replica %d: %v", w.cluster, w.app, w.version, i%2, err)
			}
		})
	}
	wg.Wait()
	// Both replicas converge on a head holding every write.
	for i, h := range hubs {
		c := adminClient(t, h)
		deadline := time.Now().Add(5 * time.Second)
		for {
			m, err := c.Matrix(ctx)
			if err != nil {
				t.Fatal(err)
			}
			var missing []string
			for _, w := range writes {
				row := slices.IndexFunc(m.Clusters, func(r apiv1.MatrixRow) bool { return r.Cluster == w.cluster })
				if row < 0 || m.Clusters[row].Apps[w.app].DesiredVersion != w.version {
					missing = append(missing, w.cluster+"/"+w.app+"@"+w.version)
				}
			}
			if len(missing) == 0 && m.Revision == git.Head() {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("replica %d at %s (remote %s) misses %v", i, m.Revision, git.Head(), missing)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// TestGitPollingMovesToASurvivor: one replica polls the remote; when it stops, the
// other takes the lease and polls within seconds.
func TestGitPollingMovesToASurvivor(t *testing.T) {
	dsn, git := postgres(t), remoteRepo(t)
	poll := func(c *Config) { c.GitPollInterval = 100 * time.Millisecond }
	a := replica(t, dsn, git, poll)
	b := replica(t, dsn, git, poll)
	ctx := t.Context()
	headOf := func(h *runningHub) string {
		m, err := adminClient(t, h).Matrix(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return m.Revision
	}
	waitHead := func(h *runningHub, rev string, within time.Duration) time.Duration {
		start := time.Now()
		for headOf(h) != rev {
			if time.Since(start) > within {
				t.Fatalf("replica did not fetch %s within %s", rev, within)
			}
			time.Sleep(20 * time.Millisecond)
		}
		return time.Since(start)
	}
	// A commit made directly in the remote reaches both: one polls, the other hears.
	rev := git.Commit(t, map[string]string{"clusters/staging/apps.yaml": "apps:\n  - name: web\n    version: \"2.0.0\"\n"}, "direct", "Pat <pat@example.com>")
	waitHead(a, rev, 5*time.Second)
	waitHead(b, rev, 5*time.Second)

	// Whichever polled, stop A: B polls alone from now on.
	if err := a.stop(); err != nil {
		t.Fatal(err)
	}
	rev = git.Commit(t, map[string]string{"clusters/staging/apps.yaml": "apps:\n  - name: web\n    version: \"2.0.1\"\n"}, "direct", "Pat <pat@example.com>")
	took := waitHead(b, rev, 5*time.Second)
	t.Logf("the survivor fetched a direct commit %s after the other replica stopped", took)
}

// TestSecondReplicaOnEmbeddedRepositoryRefused: the embedded repository lives in one
// replica's data directory, so a second replica on the same store is refused, and
// so is a second hub on one data directory.
func TestSecondReplicaOnEmbeddedRepositoryRefused(t *testing.T) {
	dsn := postgres(t)
	startHub(t, t.TempDir(), func(c *Config) { c.Store = dsn })
	err := runOnce(t, t.TempDir(), func(c *Config) { c.Store = dsn })
	var ce *ConfigError
	if !errors.As(err, &ce) || ce.Flag != "git-url" || !strings.Contains(err.Error(), "embedded repository allows one replica") {
		t.Fatalf("a second replica on the embedded repository: got %v, want a git-url ConfigError", err)
	}

	dir := t.TempDir()
	startHub(t, dir)
	err = runOnce(t, dir)
	if !errors.As(err, &ce) || ce.Flag != "data-dir" || !strings.Contains(err.Error(), "another hub runs on data directory") {
		t.Fatalf("a second hub on one data directory: got %v, want a data-dir ConfigError", err)
	}
}

// runOnce runs a hub that is expected to refuse to start, returning Run's error.
func runOnce(t *testing.T, dataDir string, mutate ...func(*Config)) error {
	t.Helper()
	tokens := filepath.Join(t.TempDir(), "admins")
	if err := os.WriteFile(tokens, []byte("jane:"+adminToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.Listener, cfg.DataDir, cfg.AdminTokensFile = l, dataDir, tokens
	cfg.GitSeedDir = filepath.Join("httpapi", "testdata", "seed")
	for _, m := range mutate {
		m(&cfg)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	return Run(ctx, cfg, slog.New(slog.NewTextHandler(testWriter{t}, nil)))
}

// killListener is a hub's listener that the test can kill: it closes the listener and
// every connection at once, as a crashed process's kernel would.
type killListener struct {
	net.Listener
	mu    sync.Mutex
	conns []net.Conn
}

func (l *killListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.mu.Lock()
		l.conns = append(l.conns, c)
		l.mu.Unlock()
	}
	return c, err
}

func (l *killListener) kill() {
	l.mu.Lock()
	defer l.mu.Unlock()
	_ = l.Listener.Close()
	for _, c := range l.conns {
		_ = c.Close()
	}
}

// TestAgentFailsOverWhenAReplicaDies: an agent given both replicas' URLs long-polls A;
// A dies mid-long-poll; the agent goes on with B: its long-poll is held by B and woken
// by a commit through B, and every state it queued, before and after, reaches the store.
func TestAgentFailsOverWhenAReplicaDies(t *testing.T) {
	dsn, git := postgres(t), remoteRepo(t)
	var kl *killListener
	a := replica(t, dsn, git, func(c *Config) { kl = &killListener{Listener: c.Listener}; c.Listener = kl })
	b := replica(t, dsn, git)
	ctx := t.Context()
	reg, err := adminClient(t, a).RegisterCluster(ctx, apiv1.RegisterClusterRequest{Name: "prod-eu"})
	if err != nil {
		t.Fatal(err)
	}
	agent, err := hubclient.New(hubclient.Config{
		HubURL: a.url + "," + b.url, Cluster: "prod-eu", Agent: apiv1.AgentInfo{ID: "agent-1"},
		Token:      func() (string, error) { return reg.Token, nil },
		MinBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	go agent.Run(ctx)
	epoch := time.Now().UnixMilli()
	put := func(seq int64, version string) {
		agent.Put(apiv1.AppStatus{App: "web", Generation: apiv1.Generation{Epoch: epoch, Sequence: seq}, Version: version,
			Phase: apiv1.PhaseSynced, Health: apiv1.Health{Status: apiv1.HealthCurrent}, LastSyncedAt: time.Now().UTC()}, nil)
	}
	put(1, "1.4.1")

	first, err := agent.WaitDesired(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	type answer struct {
		d   apiv1.DesiredRevision
		err error
	}
	polled := make(chan answer, 1)
	go func() {
		d, err := agent.WaitDesired(ctx, first.Revision)
		polled <- answer{d, err}
	}()
	time.Sleep(300 * time.Millisecond) // held by A
	killed := time.Now()
	kl.kill()
	put(2, "1.4.2")
	time.Sleep(300 * time.Millisecond) // the long-poll moved to B and is held there
	select {
	case got := <-polled:
		t.Fatalf("the long-poll answered before any commit: %+v, %v", got.d, got.err)
	default:
	}
	res, err := adminClient(t, b).SetVersion(ctx, "prod-eu", "web", "1.5.0", hubapi.WriteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case got := <-polled:
		if got.err != nil || !got.d.Changed || got.d.Revision != res.Revision {
			t.Fatalf("long-poll after the failover answered %+v, %v; want changed to %s", got.d, got.err, res.Revision)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the long-poll was not woken by a commit through B")
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		recs, err := adminClient(t, b).Matrix(ctx)
		if err != nil {
			t.Fatal(err)
		}
		i := slices.IndexFunc(recs.Clusters, func(r apiv1.MatrixRow) bool { return r.Cluster == "prod-eu" })
		if i >= 0 && recs.Clusters[i].Apps["web"].Version == "1.4.2" && agent.Len() == 0 {
			t.Logf("the state queued as A died was stored through B %s after A died", time.Since(killed))
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the state queued as A died did not reach the store: %+v, %d pending", recs.Clusters, agent.Len())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestLostEmbeddedLeaseStopsTheHub: a hub on PostgreSQL with the embedded repository
// stops when its lease's session ends (another replica may start), instead of serving
// on unguarded.
func TestLostEmbeddedLeaseStopsTheHub(t *testing.T) {
	dsn := postgres(t)
	h := startHub(t, t.TempDir(), func(c *Config) { c.Store = dsn })
	conn, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(t.Context())
	if _, err := conn.Exec(t.Context(), `SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND objid = ($1::bigint & x'FFFFFFFF'::bigint)`,
		ha.Key(EmbeddedRepoLease)); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(h.url + "/healthz")
		if err != nil {
			break // stopped serving
		}
		resp.Body.Close()
		if time.Now().After(deadline) {
			t.Fatal("the hub still serves 10 s after losing its embedded repository's lease")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := h.stop(); !errors.Is(err, errLostEmbeddedLease) {
		t.Fatalf("Run returned %v, want the lost lease", err)
	}
}
