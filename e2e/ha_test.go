package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/outpost-gitops/outpost/agent/hubclient"
	apiv1 "github.com/outpost-gitops/outpost/api/v1"
	"github.com/outpost-gitops/outpost/internal/gittest"
	"github.com/outpost-gitops/outpost/internal/hubapi"
	"github.com/outpost-gitops/outpost/internal/pgtest"
)

// TestHAReplicasAsProcesses runs three `outpost hub` processes on one PostgreSQL store
// and one remote repository, and an agent's hub client given the three URLs. It kills
// (SIGKILL) the replica holding the agent's long-poll, then another in the middle of a
// write; the agent goes on with the survivor, nothing it queued is lost, the remote
// repository stays whole, and the survivor takes over polling the remote.
func TestHAReplicasAsProcesses(t *testing.T) {
	ctx := t.Context()
	pg, err := pgtest.Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pg.Stop() })
	dsn := pg.NewDatabase(t)
	git := gittest.New(t)
	git.Commit(t, exampleFiles(t), "seed", "Seeder <seed@example.com>")

	tokens := writeFile(t, filepath.Join(t.TempDir(), "admins"), "Platform Team <platform@example.com>:"+adminToken+"\n")
	var (
		hubs []*proc
		urls []string
	)
	for i := range 3 {
		addr := freeAddr(t)
		p, err := startProc(t, "hub-"+strconv.Itoa(i), outpostBin, nil, "hub", "--listen="+addr, "--data-dir="+t.TempDir(),
			"--admin-tokens-file="+tokens, "--git-url="+git.URL(), "--store="+dsn, "--git-poll-interval=200ms")
		if err != nil {
			t.Fatal(err)
		}
		hubs, urls = append(hubs, p), append(urls, "http://"+addr)
	}
	for _, u := range urls {
		if err := waitReady(ctx, u, 30*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	admin := func(i int) *hubapi.Client {
		c, err := hubapi.New(urls[i], adminToken, hubapi.Options{RetryMax: -1})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	kill := func(i int) {
		_ = syscall.Kill(-hubs[i].cmd.Process.Pid, syscall.SIGKILL)
		<-hubs[i].done
	}
	desiredOn := func(i int) (rev, version string) {
		m, err := admin(i).Matrix(ctx)
		if err != nil {
			t.Fatal(err)
		}
		row := slices.IndexFunc(m.Clusters, func(r apiv1.MatrixRow) bool { return r.Cluster == "dev" })
		if row < 0 {
			t.Fatalf("no cluster dev on replica %d", i)
		}
		return m.Revision, m.Clusters[row].Apps["web"].DesiredVersion
	}

	reg, err := admin(1).RegisterCluster(ctx, apiv1.RegisterClusterRequest{Name: "dev"})
	if err != nil {
		t.Fatal(err)
	}
	agent, err := hubclient.New(hubclient.Config{
		HubURL: urls[0] + "," + urls[1] + "," + urls[2], Cluster: "dev", Agent: apiv1.AgentInfo{ID: "agent-dev"},
		Token:      func() (string, error) { return reg.Token, nil },
		MinBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	go agent.Run(ctx)
	epoch := time.Now().UnixMilli()
	put := func(seq int64) {
		agent.Put(apiv1.AppStatus{App: "web", Generation: apiv1.Generation{Epoch: epoch, Sequence: seq}, Version: "1.0." + strconv.FormatInt(seq, 10),
			Phase: apiv1.PhaseSynced, Health: apiv1.Health{Status: apiv1.HealthCurrent}, LastSyncedAt: time.Now().UTC()}, nil)
	}
	put(1)

	// Kill replica 0 while it holds the agent's long-poll.
	first, err := agent.WaitDesired(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	polled := make(chan apiv1.DesiredRevision, 1)
	go func() {
		for {
			d, err := agent.WaitDesired(ctx, first.Revision)
			if err == nil && d.Changed {
				polled <- d
				return
			}
			if ctx.Err() != nil {
				return
			}
		}
	}()
	time.Sleep(300 * time.Millisecond)
	kill(0)
	put(2)
	res, err := admin(2).SetVersion(ctx, "dev", "web", "1.28.0", hubapi.WriteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case d := <-polled:
		if d.Revision != res.Revision {
			t.Errorf("the long-poll moved to %s, want the commit %s", d.Revision, res.Revision)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("after replica 0 died, the agent's long-poll was not woken by a commit through replica 2")
	}

	// Kill replica 1 in the middle of a write: once its push reached the remote.
	pushes := git.Stats().ReceivePacks
	wrote := make(chan error, 1)
	go func() {
		_, err := admin(1).SetVersion(ctx, "dev", "web", "1.29.0", hubapi.WriteOptions{})
		wrote <- err
	}()
	deadline := time.Now().Add(10 * time.Second)
	for git.Stats().ReceivePacks == pushes && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	kill(1)
	werr := <-wrote
	t.Logf("the write through replica 1 as it died: %v", werr)
	put(3)
	// The survivor converges on the remote head, whichever way the write went, and the
	// write repeated through it lands.
	var rev, version string
	for start := time.Now(); ; time.Sleep(50 * time.Millisecond) {
		if rev, version = desiredOn(2); rev == git.Head() {
			break
		}
		if time.Since(start) > 10*time.Second {
			t.Fatalf("replica 2 at %s, the remote at %s", rev, git.Head())
		}
	}
	if version != "1.28.0" && version != "1.29.0" {
		t.Fatalf("web on dev desired at %q after the interrupted write, want 1.28.0 or 1.29.0", version)
	}
	if _, err := admin(2).SetVersion(ctx, "dev", "web", "1.29.0", hubapi.WriteOptions{}); err != nil {
		t.Fatalf("repeat the interrupted write through the survivor: %v", err)
	}

	// The survivor polls the remote: a commit made there directly reaches it.
	direct := git.Commit(t, map[string]string{"clusters/dev/apps.yaml": "apps:\n  - name: web\n    version: \"1.30.0\"\n"}, "direct", "Pat <pat@example.com>")
	start := time.Now()
	for rev, _ := desiredOn(2); rev != direct; rev, _ = desiredOn(2) {
		if time.Since(start) > 10*time.Second {
			t.Fatalf("replica 2 did not fetch a direct commit within 10 s: it took over no polling")
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("the survivor fetched a direct commit %s after it was made", time.Since(start))

	// Nothing the agent queued is lost: its newest state is stored.
	for start := time.Now(); agent.Len() > 0 || reportedWeb(t, admin(2)) != "1.0.3"; time.Sleep(50 * time.Millisecond) {
		if time.Since(start) > 10*time.Second {
			t.Fatalf("the agent's newest state did not reach the store: %d pending, stored %q", agent.Len(), reportedWeb(t, admin(2)))
		}
	}
}

// reportedWeb returns the version of web last reported by dev.
func reportedWeb(t *testing.T, c *hubapi.Client) string {
	t.Helper()
	m, err := c.Matrix(context.Background())
	if err != nil {
		t.Fatal(fmt.Errorf("matrix: %w", err))
	}
	for _, r := range m.Clusters {
		if r.Cluster == "dev" {
			return r.Apps["web"].Version
		}
	}
	return ""
}
