package benchrun

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	apiv1 "github.com/outpost-gitops/outpost/api/v1"
	"github.com/outpost-gitops/outpost/internal/hubapi"
)

// reportPeriod is how often each simulated cluster reports, as the issue sets it.
const reportPeriod = 30 * time.Second

// pprofDirEnv names a directory that, when set, receives the hub's profiles of each
// hub-capacity run: hub-cpu-<N>.pprof over the measurement window and
// hub-heap-<N>.pprof at its end, and of each agent-footprint run the idle agent's
// heap, agent-heap-<binary>-<apps>.pprof (read them with `go tool pprof`).
const pprofDirEnv = "OUTPOST_BENCH_PPROF_DIR"

// hubCapacity runs the hub as its own process under N simulated clusters, for each
// fleet size of the scale: each cluster holds the desired-revision long-poll and
// posts a report (the real wire types) every 30 s, the clusters' reports spread
// evenly over the period. It measures report latency, errors, and the hub process's
// RSS and CPU, plus how long seeding and registering the fleet took; figures are
// suffixed with the fleet size.
func hubCapacity(ctx context.Context, e *runEnv) (_ *Result, err error) {
	sizes, window := e.scale.hubClusters, e.scale.hubWindow
	scales := make([]string, len(sizes))
	for i, n := range sizes {
		scales[i] = strconv.Itoa(n)
	}
	res := &Result{
		Name: "hub-capacity",
		Description: fmt.Sprintf("`outpost hub` as its own process (embedded Git repository seeded with every cluster, "+
			"SQLite store), one run per fleet size. N simulated clusters, registered through the API (16 at a time), "+
			"each holding the desired-revision long-poll and posting a one-app StatusReport every %s, both started at "+
			"times spread evenly over the period (as agents start at different times); "+
			"measured over %s after one full period of warm-up. Report latency is client-side (HTTP round trip); "+
			"RSS and CPU are the hub process's (/proc). Seeding is the time from starting the hub to /readyz "+
			"(creating the repository from the seed directory); registration the time to register the whole fleet.",
			reportPeriod, window),
		Scale: fmt.Sprintf("%s clusters, %s each", strings.Join(scales, " and "), window),
	}
	for _, n := range sizes {
		if err := hubCapacityRun(ctx, e, res, n, window); err != nil {
			return res, fmt.Errorf("%d clusters: %w", n, err)
		}
	}
	return res, nil
}

// hubCapacityRun measures one fleet size into res.
func hubCapacityRun(ctx context.Context, e *runEnv, res *Result, n int, window time.Duration) error {
	suffix := fmt.Sprintf(", %d clusters", n)
	work, err := os.MkdirTemp("", "outpost-bench-hubcap-")
	if err != nil {
		return err
	}
	defer func() { _ = os.RemoveAll(work) }()
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("c%05d", i)
	}
	seed := filepath.Join(work, "seed")
	if err := writeSeed(seed, names, map[string]map[string]string{"web": configMapApp("web")}); err != nil {
		return err
	}
	pprofDir := os.Getenv(pprofDirEnv)
	hub, err := startHubProcess(ctx, work, seed, pprofDir != "")
	if err != nil {
		return err
	}
	defer hub.stop()
	regStart := time.Now()
	tokens, err := registerAll(ctx, hub.url, names)
	if err != nil {
		return err
	}
	registration := time.Since(regStart)
	e.log.Info("hub-capacity: fleet registered", "clusters", n, "seeding", hub.ready, "registration", registration)
	// Every cluster holds a long-poll and reports on its own connection, as agents do:
	// keep them all alive rather than reconnecting (and exhausting ports) every period.
	sim := &simulation{hubURL: hub.url, client: &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{
		MaxIdleConns: 2*n + 256, MaxIdleConnsPerHost: 2*n + 256, IdleConnTimeout: time.Minute,
	}}}
	simCtx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for i, name := range names {
		offset := time.Duration(i) * reportPeriod / time.Duration(n)
		wg.Go(func() { sim.longPoll(simCtx, name, tokens[name], offset) })
		wg.Go(func() { sim.report(simCtx, name, tokens[name], offset) })
	}
	// Warm-up: one full period, so every cluster reported once and holds its long-poll.
	select {
	case <-ctx.Done():
		stop()
		wg.Wait()
		return ctx.Err()
	case <-time.After(reportPeriod):
	}
	sim.measuring.Store(true)
	var profiled sync.WaitGroup
	if pprofDir != "" {
		profiled.Go(func() {
			q := fmt.Sprintf("profile?seconds=%d", int(window.Seconds()))
			if err := hub.saveProfile(ctx, q, filepath.Join(pprofDir, fmt.Sprintf("hub-cpu-%d.pprof", n))); err != nil {
				e.log.Warn("hub-capacity: CPU profile", "err", err)
			}
		})
	}
	cpu0, wall0 := hub.cpu(), time.Now()
	var rss []float64
	tick := time.NewTicker(time.Second)
	for end := time.Now().Add(window); time.Now().Before(end); {
		<-tick.C
		rss = append(rss, hub.rssMB())
	}
	tick.Stop()
	cores := (hub.cpu() - cpu0).Seconds() / time.Since(wall0).Seconds()
	profiled.Wait()
	if pprofDir != "" {
		if err := hub.saveProfile(ctx, "heap", filepath.Join(pprofDir, fmt.Sprintf("hub-heap-%d.pprof", n))); err != nil {
			e.log.Warn("hub-capacity: heap profile", "err", err)
		}
	}
	sim.measuring.Store(false)
	stop()
	wg.Wait()
	sim.client.CloseIdleConnections()

	sim.mu.Lock()
	defer sim.mu.Unlock()
	res.Figures = append(res.Figures,
		figure("report round trip"+suffix, "ms", sim.latencies),
		figure("hub RSS (sampled every second)"+suffix, "MB", rss),
		figure("hub CPU"+suffix, "cores", []float64{cores}),
		figure("report errors"+suffix, "count", []float64{float64(sim.reportErrors.Load())}),
		figure("long-poll errors"+suffix, "count", []float64{float64(sim.pollErrors.Load())}),
		figure("hub start with the seeded repository"+suffix, "s", []float64{hub.ready.Seconds()}),
		figure("registration of the fleet"+suffix, "s", []float64{registration.Seconds()}),
	)
	res.Notes = append(res.Notes, fmt.Sprintf("%d clusters: %d reports measured (%.0f/s); targets (design brief, 10 000 clusters on 2 cores): p99 < 50 ms, RSS < 1 GB",
		n, len(sim.latencies), float64(len(sim.latencies))/window.Seconds()))
	return nil
}

// simulation is the simulated fleet.
type simulation struct {
	hubURL       string
	client       *http.Client
	measuring    atomic.Bool
	reportErrors atomic.Int64
	pollErrors   atomic.Int64

	mu        sync.Mutex
	latencies []float64
}

// longPoll holds the cluster's desired-revision long-poll until ctx ends, starting
// after offset: agents start at different times, so their long-polls (held for the
// hub's timeout) do not all expire at once, as they would if the whole simulated
// fleet started in the same instant.
func (s *simulation) longPoll(ctx context.Context, cluster, token string, offset time.Duration) {
	select {
	case <-ctx.Done():
		return
	case <-time.After(offset):
	}
	since := ""
	for ctx.Err() == nil {
		q := url.Values{"cluster": {cluster}, "since": {since}}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.hubURL+apiv1.DesiredPath+"?"+q.Encode(), nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := s.client.Do(req)
		if err != nil {
			if ctx.Err() == nil {
				s.count(&s.pollErrors)
				time.Sleep(time.Second)
			}
			continue
		}
		var d apiv1.DesiredRevision
		if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&d) != nil {
			s.count(&s.pollErrors)
		}
		resp.Body.Close()
		since = d.Revision
	}
}

// report posts the cluster's status every reportPeriod, starting after offset.
func (s *simulation) report(ctx context.Context, cluster, token string, offset time.Duration) {
	epoch := time.Now().UnixMilli()
	select {
	case <-ctx.Done():
		return
	case <-time.After(offset):
	}
	tick := time.NewTicker(reportPeriod)
	defer tick.Stop()
	for seq := int64(1); ; seq++ {
		now := time.Now().UTC()
		body, _ := json.Marshal(apiv1.StatusReport{
			Cluster: cluster, Agent: apiv1.AgentInfo{ID: "sim-" + cluster}, SentAt: now,
			Apps: []apiv1.AppStatus{{
				App: "web", Generation: apiv1.Generation{Epoch: epoch, Sequence: seq}, Version: "1",
				Revision: strings.Repeat("ab", 20), Phase: apiv1.PhaseSynced, Health: apiv1.Health{Status: apiv1.HealthCurrent},
				LastSyncedAt: now,
			}},
		})
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, s.hubURL+apiv1.ReportPath, bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		start := time.Now()
		resp, err := s.client.Do(req)
		took := time.Since(start)
		switch {
		case err != nil:
			if ctx.Err() != nil {
				return
			}
			s.count(&s.reportErrors)
		default:
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				s.count(&s.reportErrors)
			} else if s.measuring.Load() {
				s.mu.Lock()
				s.latencies = append(s.latencies, float64(took.Microseconds())/1000)
				s.mu.Unlock()
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

func (s *simulation) count(c *atomic.Int64) {
	if s.measuring.Load() {
		c.Add(1)
	}
}

// registerAll registers every cluster through the API, 16 at a time.
func registerAll(ctx context.Context, hubURL string, names []string) (map[string]string, error) {
	admin, err := hubapi.New(hubURL, benchAdminToken, hubapi.Options{})
	if err != nil {
		return nil, err
	}
	tokens := make(map[string]string, len(names))
	var mu sync.Mutex
	var first error
	sem := make(chan struct{}, 16)
	var wg sync.WaitGroup
	for _, name := range names {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			reg, err := admin.RegisterCluster(ctx, apiv1.RegisterClusterRequest{Name: name})
			mu.Lock()
			defer mu.Unlock()
			if err != nil && first == nil {
				first = fmt.Errorf("register %s: %w", name, err)
			}
			if err == nil {
				tokens[name] = reg.Token
			}
		})
	}
	wg.Wait()
	return tokens, first
}

// hubProcess is `outpost hub` running as its own process.
type hubProcess struct {
	cmd      *exec.Cmd
	url      string
	pprofURL string // the hub's net/http/pprof, when started with profiles
	done     chan struct{}
	ready    time.Duration // from starting the process to /readyz answering 200
}

// startHubProcess builds outpost and runs `outpost hub` on a free port, serving
// its profiles on another one when profile is set.
func startHubProcess(ctx context.Context, work, seed string, profile bool) (*hubProcess, error) {
	bin := filepath.Join(work, "outpost")
	if err := buildLikeTheImage(ctx, bin, "github.com/outpost-gitops/outpost/cmd/outpost", "grpcnotrace"); err != nil {
		return nil, err
	}
	tokens := filepath.Join(work, "admins")
	if err := os.WriteFile(tokens, []byte("bench:"+benchAdminToken+"\n"), 0o600); err != nil {
		return nil, err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := l.Addr().String()
	l.Close()
	pprofAddr := ""
	if profile {
		pl, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		pprofAddr = pl.Addr().String()
		pl.Close()
	}
	logFile, err := os.Create(filepath.Join(work, "hub.log"))
	if err != nil {
		return nil, err
	}
	args := []string{"hub", "--listen=" + addr, "--data-dir=" + filepath.Join(work, "hub"),
		"--admin-tokens-file=" + tokens, "--git-seed=" + seed, "--log-level=warn"}
	if pprofAddr != "" {
		args = append(args, "--pprof-listen="+pprofAddr)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	started := time.Now()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start outpost hub: %w", err)
	}
	logFile.Close()
	h := &hubProcess{cmd: cmd, url: "http://" + addr, done: make(chan struct{})}
	if pprofAddr != "" {
		h.pprofURL = "http://" + pprofAddr + "/debug/pprof/"
	}
	go func() { _ = cmd.Wait(); close(h.done) }()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		resp, err := http.Get(h.url + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				h.ready = time.Since(started)
				return h, nil
			}
		}
		select {
		case <-h.done:
			log, _ := os.ReadFile(filepath.Join(work, "hub.log"))
			return nil, fmt.Errorf("outpost hub exited: %s", lastLines(string(log), 5))
		default:
		}
		if time.Now().After(deadline) {
			h.stop()
			return nil, fmt.Errorf("outpost hub not ready within 2 minutes")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (h *hubProcess) stop() {
	_ = syscall.Kill(-h.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-h.done:
	case <-time.After(20 * time.Second):
		_ = syscall.Kill(-h.cmd.Process.Pid, syscall.SIGKILL)
		<-h.done
	}
}

// saveProfile saves the hub's profile /debug/pprof/<query> to file.
func (h *hubProcess) saveProfile(ctx context.Context, query, file string) error {
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, h.pprofURL+query, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("get %s: %w", query, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("get %s: %s", query, resp.Status)
	}
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("get %s: %w", query, err)
	}
	return os.WriteFile(file, data, 0o644)
}

// rssMB is the hub process's resident set, in MB.
func (h *hubProcess) rssMB() float64 { return procRSSMB(h.cmd.Process.Pid) }

// cpu is the hub process's CPU time so far (user + system).
func (h *hubProcess) cpu() time.Duration {
	d, _ := procCPU(h.cmd.Process.Pid)
	return d
}
