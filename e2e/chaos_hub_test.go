package e2e

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	_ "modernc.org/sqlite" // PRAGMA integrity_check of the hub's database

	apiv1 "github.com/outpost-gitops/outpost/api/v1"
	"github.com/outpost-gitops/outpost/internal/faultproxy"
	"github.com/outpost-gitops/outpost/internal/hubapi"
)

// chaosHub is a hub process of the fault-injection suite, reading Git through an
// HTTP proxy (so that a fault can be injected in the middle of a push), restartable
// on the same data and address.
type chaosHub struct {
	t    *testing.T
	addr string
	url  string
	dir  string
	git  *faultproxy.HTTP
	proc *proc
	api  *hubapi.Client
}

func (ch *chaos) startHub(t *testing.T) *chaosHub {
	t.Helper()
	base := strings.TrimSuffix(ch.git.URL(), "/outpost.git")
	gp, err := faultproxy.NewHTTP(base, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = gp.Close() })
	h := &chaosHub{t: t, addr: freeAddr(t), dir: filepath.Join(t.TempDir(), "hub"), git: gp}
	h.url = "http://" + h.addr
	h.start()
	if h.api, err = hubapi.New(h.url, adminToken, hubapi.Options{}); err != nil {
		t.Fatal(err)
	}
	return h
}

// start runs the hub (again) and waits until it is ready.
func (h *chaosHub) start() {
	t := h.t
	t.Helper()
	dir := t.TempDir()
	admins := writeFile(t, filepath.Join(dir, "admins"), "Platform Team <platform@example.com>:"+adminToken+"\n")
	gitPW := writeFile(t, filepath.Join(dir, "git-password"), "chaos-git-token")
	p, err := startProc(t, "hub", outpostBin, nil, "hub", "--listen="+h.addr, "--data-dir="+h.dir,
		"--admin-tokens-file="+admins, "--git-url="+h.git.URL()+"/outpost.git", "--git-password-file="+gitPW,
		"--git-poll-interval=1s")
	if err != nil {
		t.Fatal(err)
	}
	h.proc = p
	if err := waitReady(t.Context(), h.url, 30*time.Second); err != nil {
		t.Fatal(err)
	}
}

// register registers the site's cluster and returns its agent token file.
func (h *chaosHub) register(s *site) string {
	h.t.Helper()
	reg, err := h.api.RegisterCluster(h.t.Context(), apiv1.RegisterClusterRequest{Name: s.name})
	if err != nil {
		h.t.Fatalf("register %s: %v", s.name, err)
	}
	return writeFile(h.t, filepath.Join(h.t.TempDir(), "token"), reg.Token)
}

// app returns the hub's status of the app ("" version when unknown) and the
// cluster's last report time.
func (h *chaosHub) app(cluster, app string) (apiv1.AppState, time.Time) {
	ctx, cancel := context.WithTimeout(h.t.Context(), 5*time.Second)
	defer cancel()
	st, err := h.api.ClusterStatus(ctx, cluster)
	if err != nil {
		return apiv1.AppState{}, time.Time{}
	}
	c, err := h.api.GetCluster(ctx, cluster)
	if err != nil {
		return appState(st, app), time.Time{}
	}
	return appState(st, app), c.LastReportAt
}

// waitSynced waits until the hub shows app synced at version and returns how long
// that took.
func (h *chaosHub) waitSynced(cluster, app, version string, timeout time.Duration) time.Duration {
	h.t.Helper()
	start := time.Now()
	for {
		a, _ := h.app(cluster, app)
		if a.Phase == apiv1.PhaseSynced && a.Version == version {
			return time.Since(start)
		}
		if time.Since(start) > timeout {
			h.t.Fatalf("hub: %s/%s not synced at %s within %s (last: version %q phase %s)", cluster, app, version, timeout, a.Version, a.Phase)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// integrity runs PRAGMA integrity_check on the hub's database (the hub stopped).
func (h *chaosHub) integrity() error {
	db, err := sql.Open("sqlite", filepath.Join(h.dir, "hub.db"))
	if err != nil {
		return err
	}
	defer db.Close()
	var res string
	if err := db.QueryRow("PRAGMA integrity_check").Scan(&res); err != nil {
		return fmt.Errorf("PRAGMA integrity_check: %w", err)
	}
	if res != "ok" {
		return fmt.Errorf("PRAGMA integrity_check: %s", res)
	}
	return nil
}

// hubKilledMidCommit: the hub is SIGKILLed during a commit through the API, once
// before its push reaches Git and once right after Git accepted it. The client's
// request fails; retried with the same If-Match after the restart it either
// succeeds (the commit was not in Git) or is refused as stale (it was): exactly one
// commit sets the version, and the agent applies it.
func (ch *chaos) hubKilledMidCommit(t *testing.T) {
	s := ch.newSite(t, "hubcommit")
	n := ch.scale.objects
	h := ch.startHub(t)
	token := h.register(s)
	s.startAgent(agentOpts{hubURL: h.url, tokenFile: token})
	s.waitConverged(n, "1")
	h.waitSynced(s.name, s.big, "1", ch.scale.converge)
	s.recordBystanders()

	for i, landed := range []bool{false, true} {
		version := fmt.Sprint(2 + i)
		before := headOf(t, h.api)
		isPush := func(r faultproxy.Request) bool {
			return r.Method == "POST" && strings.HasSuffix(r.Path, "/git-receive-pack")
		}
		if landed {
			h.git.OnResponse(func(r faultproxy.Request) {
				if isPush(r) {
					_ = syscall.Kill(-h.proc.cmd.Process.Pid, syscall.SIGKILL)
				}
			})
		} else {
			h.git.OnRequest(func(r faultproxy.Request) error {
				if isPush(r) {
					_ = syscall.Kill(-h.proc.cmd.Process.Pid, syscall.SIGKILL)
					return errors.New("hub killed before its push arrived")
				}
				return nil
			})
		}
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		_, err := h.api.SetVersion(ctx, s.name, s.big, version, hubapi.WriteOptions{IfMatch: before})
		cancel()
		if err == nil {
			t.Fatalf("landed=%v: the commit through the killed hub succeeded", landed)
		}
		<-h.proc.done
		h.git.OnRequest(nil)
		h.git.OnResponse(nil)
		if err := h.integrity(); err != nil {
			t.Fatalf("landed=%v: hub database after SIGKILL: %v", landed, err)
		}
		restart := time.Now()
		h.start()
		ctx, cancel = context.WithTimeout(t.Context(), 30*time.Second)
		_, err = h.api.SetVersion(ctx, s.name, s.big, version, hubapi.WriteOptions{IfMatch: before})
		cancel()
		var apiErr *hubapi.APIError
		switch {
		case !landed && err != nil:
			t.Fatalf("the commit never reached Git, yet its retry with If-Match %s failed: %v", before, err)
		case landed && (!errors.As(err, &apiErr) || !apiErr.Conflict()):
			t.Fatalf("the commit reached Git, yet its retry with If-Match %s answered %v, want 409 (stale)", before, err)
		}
		hl, err := h.api.History(t.Context(), s.name, hubapi.HistoryQuery{App: s.big, Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		sets := 0
		for _, e := range hl.Entries {
			if e.After == version {
				sets++
			}
		}
		if sets != 1 {
			t.Errorf("landed=%v: %d commits set %s=%s, want exactly 1: %+v", landed, sets, s.big, version, hl.Entries)
		}
		if head := headOf(t, h.api); head != ch.git.Head() {
			t.Errorf("landed=%v: hub at %s, Git at %s", landed, head, ch.git.Head())
		}
		took := s.waitConverged(n, version)
		h.waitSynced(s.name, s.big, version, ch.scale.converge)
		figure(t, fmt.Sprintf("hub SIGKILL mid-commit (push landed: %v)", landed), "commits_duplicated", 0, "commits_lost", 0,
			"client_answer_on_retry", map[bool]string{false: "committed", true: "409-stale"}[landed],
			"agent_converged_after_restart", time.Since(restart).Round(time.Millisecond), "poll", took.Round(time.Millisecond))
	}
	s.checkBystanders()
}

// hubKilledMidReports: the hub is SIGKILLed while the agent reports a new version of
// both apps (at the first report); restarted on the same data, it ends with both
// apps' newest state (the agent's queue resent them) and an intact database.
func (ch *chaos) hubKilledMidReports(t *testing.T) {
	s := ch.newSite(t, "hubreports")
	n := ch.scale.objects
	h := ch.startHub(t)
	token := h.register(s)
	hp, err := faultproxy.NewHTTP(h.url, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = hp.Close() })
	s.startAgent(agentOpts{hubURL: hp.URL(), tokenFile: token})
	s.waitConverged(n, "1")
	h.waitSynced(s.name, s.big, "1", ch.scale.converge)
	s.recordBystanders()

	killed := make(chan struct{})
	hp.OnRequest(func(r faultproxy.Request) error {
		if r.Method == "POST" && r.Path == apiv1.ReportPath {
			select {
			case <-killed:
			default:
				_ = syscall.Kill(-h.proc.cmd.Process.Pid, syscall.SIGKILL)
				close(killed)
			}
		}
		return nil
	})
	s.setVersion("2")
	select {
	case <-killed:
	case <-time.After(ch.scale.converge):
		t.Fatal("no report of version 2")
	}
	<-h.proc.done
	hp.OnRequest(nil)
	s.waitConverged(n, "2")
	if err := h.integrity(); err != nil {
		t.Fatalf("hub database after SIGKILL: %v", err)
	}
	restart := time.Now()
	h.start()
	took := h.waitSynced(s.name, s.big, "2", ch.scale.converge)
	h.waitSynced(s.name, s.by, "1", ch.scale.converge)
	h.proc.stop()
	if err := h.integrity(); err != nil {
		t.Errorf("hub database after the restart: %v", err)
	}
	s.checkBystanders()
	figure(t, "hub SIGKILL mid-report", "reports_lost", 0, "sqlite_integrity", "ok",
		"hub_current_after_restart", time.Since(restart).Round(time.Millisecond), "poll", took.Round(time.Millisecond))
}

// partitions: the agent reaches the hub through a TCP fault proxy. For each fault
// (drop, half-open, reset mid-stream, a 2 s delay) a new version is committed to Git:
// the agent converges from Git regardless; the hub keeps the cluster's last report
// time (no report gets through) and catches up within one report once healed. Then
// the agent loses Git (drop): it keeps the last state and converges once Git is back.
func (ch *chaos) partitions(t *testing.T) {
	s := ch.newSite(t, "partition")
	n := ch.scale.objects
	h := ch.startHub(t)
	token := h.register(s)
	hubProxy, err := faultproxy.NewTCP(h.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = hubProxy.Close() })
	gitProxy, err := faultproxy.NewTCP(strings.TrimSuffix(strings.TrimPrefix(ch.git.URL(), "http://"), "/outpost.git"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = gitProxy.Close() })
	a := s.startAgent(agentOpts{hubURL: "http://" + hubProxy.Addr(), tokenFile: token,
		gitURL: "http://" + gitProxy.Addr() + "/outpost.git"})
	s.waitConverged(n, "1")
	h.waitSynced(s.name, s.big, "1", ch.scale.converge)
	s.recordBystanders()

	version := 1
	for _, mode := range []faultproxy.Mode{faultproxy.Drop, faultproxy.HalfOpen, faultproxy.Reset, faultproxy.Delay} {
		version++
		v := fmt.Sprint(version)
		_, lastBefore := h.app(s.name, s.big)
		hubProxy.SetMode(mode)
		cut := time.Now()
		s.setVersion(v)
		took := s.waitConverged(n, v)
		if mode != faultproxy.Delay {
			time.Sleep(2 * time.Second) // reports queue up
			st, last := h.app(s.name, s.big)
			if st.Version == v {
				t.Errorf("%s: the hub got version %s through the partition", mode, v)
			}
			if last.After(cut) {
				t.Errorf("%s: the hub's last report of the cluster moved during the partition (%s, cut at %s)", mode, last, cut)
			}
			if last.IsZero() || last.Before(lastBefore) {
				t.Errorf("%s: last report %s, was %s", mode, last, lastBefore)
			}
		}
		healed := time.Now()
		hubProxy.SetMode(faultproxy.Pass)
		caught := h.waitSynced(s.name, s.big, v, ch.scale.converge)
		if mode == faultproxy.Delay {
			caught = time.Since(cut)
		}
		if _, last := h.app(s.name, s.big); !last.After(healed) && mode != faultproxy.Delay {
			t.Errorf("%s: last report %s not after the healing at %s", mode, last, healed)
		}
		figure(t, "hub↔agent partition: "+mode.String(), "agent_converged_from_git", took.Round(time.Millisecond),
			"hub_caught_up_after_heal", caught.Round(time.Millisecond), "reports_lost", 0)
	}

	// Agent ↔ Git.
	version++
	v := fmt.Sprint(version)
	gitProxy.SetMode(faultproxy.Drop)
	cut := time.Now()
	s.setVersion(v)
	time.Sleep(5 * time.Second) // several Git polls
	st, err := s.state(t.Context())
	if err == nil {
		err = st.convergedTo(s.big, n, fmt.Sprint(version-1))
	}
	if err != nil {
		t.Errorf("agent ↔ Git partition: last state not kept: %v", err)
	}
	if w := a.kube.Writes(cut); len(w) > 0 {
		t.Errorf("agent ↔ Git partition: the agent wrote: %v", w)
	}
	healed := time.Now()
	gitProxy.SetMode(faultproxy.Pass)
	s.waitConverged(n, v)
	took := time.Since(healed)
	h.waitSynced(s.name, s.big, v, ch.scale.converge)
	s.checkBystanders()
	figure(t, "agent↔Git partition (drop)", "writes_during_partition", 0, "converge_after_heal", took.Round(time.Millisecond))
}

// diskFull: the agent's cache directory is a 4 MiB tmpfs that a file fills; a new
// commit fails with a clear error (no space) and the last state is kept, nothing
// pruned; once space is freed the agent converges. Needs root (mount); skipped
// otherwise.
//
// Runs at both scales (make test and make chaos). It found a bug, fixed in
// agent/source: a fetch cut by ENOSPC could leave the cache answering "object not
// found" forever (docs/reliability.md).
func (ch *chaos) diskFull(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounts a tmpfs for the agent's cache: needs root (CI runs as root; docs/reliability.md)")
	}
	cache := filepath.Join(t.TempDir(), "cache")
	if err := os.MkdirAll(cache, 0o700); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=4m,mode=0700", "tmpfs", cache).CombinedOutput(); err != nil {
		t.Skipf("mounting a tmpfs for the agent's cache failed (docs/reliability.md): %v: %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("umount", "-l", cache).Run() })
	s := ch.newSite(t, "diskfull")
	n := ch.scale.objects
	a := s.startAgent(agentOpts{cacheDir: cache})
	s.waitConverged(n, "1")
	s.recordBystanders()

	filler := filepath.Join(cache, "filler")
	f, err := os.Create(filler)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64<<10)
	for {
		if _, err := f.Write(buf); err != nil {
			break // ENOSPC: full
		}
	}
	f.Close()
	cut := time.Now()
	s.setObjects(n / 2) // would prune half
	s.setVersion("2")
	time.Sleep(5 * time.Second)
	st, err := s.state(t.Context())
	if err == nil {
		err = st.convergedTo(s.big, n, "1")
	}
	if err != nil {
		t.Errorf("disk full: last state not kept: %v", err)
	}
	if w := a.kube.Writes(cut); len(w) > 0 {
		t.Errorf("disk full: the agent wrote: %v", w)
	}
	if !a.alive() {
		t.Fatal("the agent exited when its cache disk was full")
	}
	if log := readFile(t, a.log); !strings.Contains(log, "no space left on device") {
		t.Errorf("the agent's log does not say the disk is full:\n%s", tailLines(log, 10))
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	freed := time.Now()
	s.waitConverged(n/2, "2")
	s.checkBystanders()
	figure(t, "disk full in the agent's cache", "writes_while_full", 0, "objects_pruned_while_full", 0,
		"converge_after_space_freed", time.Since(freed).Round(time.Millisecond))
}
