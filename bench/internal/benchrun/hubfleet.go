package benchrun

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sync/errgroup"

	apiv1 "github.com/outpost-gitops/outpost/api/v1"
	"github.com/outpost-gitops/outpost/internal/hubapi"
)

const (
	// changeApp is the one app of every simulated cluster of hub-fleet-change.
	changeApp = "web"
	// changeStartSpread spreads the simulated clusters' first long-polls.
	changeStartSpread = 10 * time.Second
	// changeTimeout bounds one fleet-wide change: the bulk commit, every cluster's
	// notification and report.
	changeTimeout = 3 * time.Minute
	// changeReadyTimeout bounds the wait for every long-poll to be held at the hub.
	changeReadyTimeout = 3 * time.Minute
	// changePause separates the changes.
	changePause = 5 * time.Second
)

// hubFleetChange is issue #15 B's fleet-wide change: `outpost hub` as its own process
// with N simulated clusters (goroutines of this process, the real wire types), each
// holding the desired-revision long-poll; when it is answered with a new revision the
// cluster reports the new version at once. A change is one bulk commit (POST
// /api/v1/apps/web/bulk, selector env=bench) touching every cluster. It measures that
// every cluster's long-poll sees the change (none lost) and the latencies of the
// notification and of the burst of reports that follows.
func hubFleetChange(ctx context.Context, e *runEnv) (_ *Result, err error) {
	n, bumps := e.scale.changeClusters, e.scale.changeBumps
	res := &Result{
		Name: "hub-fleet-change",
		Description: fmt.Sprintf("`outpost hub` as its own process (built like the image; embedded Git repository "+
			"seeded with every cluster, SQLite store) and %d simulated clusters in the harness process (goroutines "+
			"on keep-alive connections, the real wire types), registered through the API. Each holds the "+
			"desired-revision long-poll (first ones spread over %s); once the hub's metric shows all %d held, a "+
			"change sets a new version on every cluster: one bulk commit (POST /api/v1/apps/%s/bulk) per shard of %d "+
			"clusters (the most one bulk write may select; selector shard=<k>), all sent at once. "+
			"Each cluster, when its long-poll answers Changed with the new revision, posts a StatusReport of the new "+
			"version Synced at once (no fetch or apply: the worst case for the hub, all reports in one burst). "+
			"notified: first bulk call's start → that cluster's long-poll answered; report round trip: the report's HTTP "+
			"round trip (client side); reported: first bulk call's start → its report answered. Lost: clusters whose "+
			"long-poll did not bring the new revision within %s (must be 0); every report must be accepted, and "+
			"then the hub's matrix must show every cluster at the new version.", n, changeStartSpread, n, changeApp, apiv1.MaxBulkClusters, changeTimeout),
		Scale: fmt.Sprintf("%d simulated clusters, %d fleet-wide changes", n, bumps),
	}
	// Each simulated cluster holds one connection (its report reuses it between
	// long-polls); the hub is its own process with its own limit.
	if note := raiseFileLimit(uint64(n + 1024)); note != "" {
		res.Notes = append(res.Notes, note)
	}
	work, err := os.MkdirTemp("", "outpost-bench-change-")
	if err != nil {
		return res, fmt.Errorf("work directory: %w", err)
	}
	defer func() { _ = os.RemoveAll(work) }()
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("c%05d", i)
	}
	seed := filepath.Join(work, "seed")
	if err := writeSeed(seed, names, map[string]map[string]string{changeApp: configMapApp(changeApp)}); err != nil {
		return res, err
	}
	// One bulk write may select at most apiv1.MaxBulkClusters: the fleet is labelled in
	// shards of that size, and a change is one bulk commit per shard, all sent at once.
	shards := (n + apiv1.MaxBulkClusters - 1) / apiv1.MaxBulkClusters
	for i, c := range names {
		labels := fmt.Sprintf("labels:\n  env: bench\n  shard: \"%d\"\n", i/apiv1.MaxBulkClusters)
		if err := os.WriteFile(filepath.Join(seed, "clusters", c, "cluster.yaml"), []byte(labels), 0o644); err != nil {
			return res, fmt.Errorf("seed cluster.yaml of %s: %w", c, err)
		}
	}
	hub, err := startHubProcess(ctx, work, seed, false)
	if err != nil {
		return res, err
	}
	defer hub.stop()
	tokens, err := registerAll(ctx, hub.url, names)
	if err != nil {
		return res, err
	}
	// The shards' bulk commits are serialized by the hub: the last may wait for all
	// the others, longer than the client's default 30 s.
	admin, err := hubapi.New(hub.url, benchAdminToken, hubapi.Options{Timeout: changeTimeout})
	if err != nil {
		return res, err
	}
	e.log.Info("hub-fleet-change: fleet registered", "clusters", n)

	// A report waits for the hub as long as a change may take: a slow answer is a
	// latency, not a failure.
	sim := &changeSim{hubURL: hub.url, client: &http.Client{Timeout: changeTimeout, Transport: &http.Transport{
		MaxIdleConns: n + 256, MaxIdleConnsPerHost: n + 256, IdleConnTimeout: 5 * time.Minute,
	}}}
	simCtx, stopSim := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() {
		stopSim()
		wg.Wait()
		sim.client.CloseIdleConnections()
	}()
	for i, name := range names {
		offset := time.Duration(i) * changeStartSpread / time.Duration(n)
		wg.Go(func() { sim.run(simCtx, i, name, tokens[name], offset) })
	}

	var notified, reportRTT, reported, calls, lastReported, rssMax, cpus []float64
	var lost, unshown, pollErrs, reportErrs, wrongRev int
	for b := range bumps {
		held, err := waitHeld(ctx, hub.url+"/metrics", n)
		if err != nil {
			return res, err
		}
		if held < n {
			res.Notes = append(res.Notes, fmt.Sprintf("change %d: only %d of %d long-polls held at the hub when it was committed", b+1, held, n))
		}
		version := fmt.Sprint(b + 2)
		st := &changeBump{version: version, start: time.Now(), claimed: make([]atomic.Bool, n), revs: make([]string, n)}
		sim.bump.Store(st)
		cpu0 := hub.cpu()
		var rssPeak atomic.Uint64
		sampleCtx, stopSample := context.WithCancel(ctx)
		var sampled sync.WaitGroup
		sampled.Go(func() {
			for sampleCtx.Err() == nil {
				if v := uint64(hub.rssMB()); v > rssPeak.Load() {
					rssPeak.Store(v)
				}
				_ = sleep(sampleCtx, 250*time.Millisecond)
			}
		})
		bctx, cancel := context.WithTimeout(ctx, changeTimeout)
		shardRevs, call, err := bulkShards(bctx, admin, shards, version, st.start)
		if err != nil {
			cancel()
			stopSample()
			sampled.Wait()
			return res, fmt.Errorf("change to %s: %w", version, err)
		}
		for st.done.Load() < int64(n) && bctx.Err() == nil {
			_ = sleep(bctx, 50*time.Millisecond)
		}
		cancel()
		wall := time.Since(st.start)
		stopSample()
		sampled.Wait()
		cpus = append(cpus, (hub.cpu()-cpu0).Seconds()/wall.Seconds())
		rssMax = append(rssMax, float64(rssPeak.Load()))
		calls = append(calls, float64(call.Microseconds())/1000)
		st.mu.Lock()
		done := len(st.reported)
		notified, reportRTT, reported = append(notified, st.notified...), append(reportRTT, st.reportRTT...), append(reported, st.reported...)
		if done > 0 {
			lastReported = append(lastReported, figure("", "", st.reported).Max)
		}
		st.mu.Unlock()
		claimed := 0
		for i := range st.claimed {
			if st.claimed[i].Load() {
				claimed++
			}
		}
		lost += n - claimed
		pollErrs += int(st.pollErrors.Load())
		reportErrs += int(st.reportErrors.Load())
		for i := range st.revs {
			if st.claimed[i].Load() && !slices.Contains(shardRevs, st.revs[i]) {
				wrongRev++
			}
		}
		for reason, count := range st.failures() {
			res.Notes = append(res.Notes, fmt.Sprintf("change %d: %d reports failed: %s", b+1, count, reason))
		}
		sim.bump.Store(nil)
		// The hub's own view: every cluster at the new version.
		if missing, err := matrixMissing(ctx, admin, names, version); err != nil {
			return res, err
		} else if missing > 0 {
			res.Notes = append(res.Notes, fmt.Sprintf("change %d: %d clusters not shown at version %s Synced in the hub's matrix", b+1, missing, version))
			unshown += missing
		}
		e.log.Info("hub-fleet-change: change done", "n", b+1, "reported", done, "of", n, "took", wall.Round(time.Millisecond))
		if err := sleep(ctx, changePause); err != nil {
			return res, err
		}
	}
	res.Figures = append(res.Figures,
		figure(fmt.Sprintf("bulk commits answered (%d, one per shard of %d clusters)", shards, apiv1.MaxBulkClusters), "ms", calls),
		figure("commit → long-poll answered (per cluster)", "ms", notified),
		figure("report round trip during the change (per cluster)", "ms", reportRTT),
		figure("commit → report answered (per cluster)", "ms", reported),
		figure(fmt.Sprintf("commit → all %d clusters reported", n), "ms", lastReported),
		figure("long-polls lost", "count", []float64{float64(lost)}),
		figure("long-polls answered with a revision that is none of the change's commits", "count", []float64{float64(wrongRev)}),
		figure("clusters the hub's matrix did not show at the new version", "count", []float64{float64(unshown)}),
		figure("long-poll errors during the changes", "count", []float64{float64(pollErrs)}),
		figure("report errors during the changes", "count", []float64{float64(reportErrs)}),
		figure("hub RSS peak during a change", "MB", rssMax),
		figure("hub CPU during a change", "cores", cpus),
	)
	res.Notes = append(res.Notes, fmt.Sprintf("the simulated clusters run in the harness process on the same 2 cores as the hub: "+
		"their own CPU (%d goroutines encoding and decoding JSON) is part of the latencies", n))
	var fails []string
	if lost > 0 {
		fails = append(fails, fmt.Sprintf("%d long-polls lost", lost))
	}
	if reportErrs > 0 {
		fails = append(fails, fmt.Sprintf("%d reports failed", reportErrs))
	}
	if unshown > 0 {
		fails = append(fails, fmt.Sprintf("%d clusters not at the new version in the hub's matrix", unshown))
	}
	if len(fails) > 0 {
		return res, thresholdError(strings.Join(fails, "; "))
	}
	return res, nil
}

// bulkShards sets changeApp to version on every shard of the fleet (selector
// shard=<k>), one bulk commit per shard, all sent at once; it returns each shard's
// commit and the time from start until the last call was answered.
func bulkShards(ctx context.Context, admin *hubapi.Client, shards int, version string, start time.Time) ([]string, time.Duration, error) {
	revs := make([]string, shards)
	var mu sync.Mutex
	var last time.Duration
	g, gctx := errgroup.WithContext(ctx)
	for k := range shards {
		g.Go(func() error {
			out, err := admin.Bulk(gctx, changeApp, apiv1.BulkRequest{Action: apiv1.BulkSet, Version: version, Selector: fmt.Sprintf("shard=%d", k)}, hubapi.WriteOptions{})
			if err != nil {
				return fmt.Errorf("bulk write of shard %d: %w", k, err)
			}
			if !out.Committed || len(out.Changes) == 0 {
				return fmt.Errorf("bulk write of shard %d committed %v on %d clusters", k, out.Committed, len(out.Changes))
			}
			mu.Lock()
			revs[k], last = out.Revision, max(last, time.Since(start))
			mu.Unlock()
			return nil
		})
	}
	err := g.Wait()
	return revs, last, err
}

// raiseFileLimit raises this process's open-file limit to its hard limit, and says
// so in a note when that is below want.
func raiseFileLimit(want uint64) string {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return "open-file limit unknown: " + err.Error()
	}
	if lim.Cur < lim.Max {
		lim.Cur = lim.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
			return "open-file limit not raised: " + err.Error()
		}
	}
	if lim.Cur < want {
		return fmt.Sprintf("open-file limit %d is below the %d this run may need", lim.Cur, want)
	}
	return ""
}

// waitHeld reads the hub's metrics until outpost_hub_longpoll_waiting shows n long-polls
// held, and returns the last count (below n after changeReadyTimeout).
func waitHeld(ctx context.Context, metricsURL string, n int) (int, error) {
	deadline := time.Now().Add(changeReadyTimeout)
	held := 0
	for {
		m, err := scrapeMetrics(ctx, metricsURL)
		if err != nil {
			return 0, err
		}
		held = int(m["outpost_hub_longpoll_waiting"])
		if held >= n || time.Now().After(deadline) {
			return held, nil
		}
		if err := sleep(ctx, 500*time.Millisecond); err != nil {
			return held, err
		}
	}
}

// matrixMissing returns how many of the clusters names the hub's matrix does not show
// with changeApp at version Synced, reading it until none is missing or for 30 s.
func matrixMissing(ctx context.Context, admin *hubapi.Client, names []string, version string) (int, error) {
	deadline := time.Now().Add(30 * time.Second)
	for {
		m, err := admin.Matrix(ctx)
		if err != nil {
			return 0, fmt.Errorf("matrix: %w", err)
		}
		ok := 0
		for _, row := range m.Clusters {
			if c := row.Apps[changeApp]; c.Version == version && c.Phase == apiv1.PhaseSynced {
				ok++
			}
		}
		if missing := len(names) - ok; missing == 0 || time.Now().After(deadline) {
			return missing, nil
		}
		if err := sleep(ctx, time.Second); err != nil {
			return 0, err
		}
	}
}

// changeSim is hub-fleet-change's simulated fleet.
type changeSim struct {
	hubURL string
	client *http.Client
	// bump is the change under way; nil between changes.
	bump atomic.Pointer[changeBump]
}

// changeBump is one fleet-wide change as the simulated clusters see it.
type changeBump struct {
	version string
	start   time.Time
	// claimed[i] is set when cluster i saw this change; revs[i] is the revision it saw.
	claimed []atomic.Bool
	revs    []string
	// done counts the clusters that saw the change and reported it.
	done                     atomic.Int64
	pollErrors, reportErrors atomic.Int64

	mu                            sync.Mutex
	notified, reportRTT, reported []float64
	failed                        map[string]int // why reports failed: count
}

// fail records a failed report.
func (b *changeBump) fail(reason string) {
	b.reportErrors.Add(1)
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.failed == nil {
		b.failed = map[string]int{}
	}
	b.failed[reason]++
}

// failures returns why reports failed, with counts.
func (b *changeBump) failures() map[string]int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return maps.Clone(b.failed)
}

// run is simulated cluster i: it long-polls from offset on, reporting version "1"
// after its first answer and each change's version when a long-poll brings it.
func (s *changeSim) run(ctx context.Context, i int, cluster, token string, offset time.Duration) {
	if sleep(ctx, offset) != nil {
		return
	}
	epoch := time.Now().UnixMilli()
	var seq int64
	since := ""
	for ctx.Err() == nil {
		q := url.Values{"cluster": {cluster}, "since": {since}}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.hubURL+apiv1.DesiredPath+"?"+q.Encode(), nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := s.client.Do(req)
		cur := s.bump.Load()
		if err != nil {
			if ctx.Err() == nil {
				if cur != nil {
					cur.pollErrors.Add(1)
				}
				_ = sleep(ctx, time.Second)
			}
			continue
		}
		var d apiv1.DesiredRevision
		derr := json.NewDecoder(resp.Body).Decode(&d)
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || derr != nil {
			if cur != nil {
				cur.pollErrors.Add(1)
			}
			_ = sleep(ctx, time.Second)
			continue
		}
		if !d.Changed || d.Revision == since {
			continue
		}
		since = d.Revision
		version := "1"
		if cur != nil {
			if cur.claimed[i].Swap(true) {
				continue // this change was seen already
			}
			cur.revs[i] = d.Revision
			version = cur.version
		}
		notifiedAt := time.Since(cur.startOr())
		seq++
		rtt, failure := s.report(ctx, cluster, token, epoch, seq, version, d.Revision)
		if cur == nil {
			continue
		}
		if failure != "" {
			cur.fail(failure)
			continue
		}
		cur.mu.Lock()
		cur.notified = append(cur.notified, float64(notifiedAt.Microseconds())/1000)
		cur.reportRTT = append(cur.reportRTT, float64(rtt.Microseconds())/1000)
		cur.reported = append(cur.reported, float64(time.Since(cur.start).Microseconds())/1000)
		cur.mu.Unlock()
		cur.done.Add(1)
	}
}

// startOr is the change's start; the zero time for no change.
func (b *changeBump) startOr() time.Time {
	if b == nil {
		return time.Time{}
	}
	return b.start
}

// report posts the cluster's status: changeApp at version, Synced at revision. It
// returns the round trip, and why it failed when the hub did not accept it.
func (s *changeSim) report(ctx context.Context, cluster, token string, epoch, seq int64, version, revision string) (time.Duration, string) {
	now := time.Now().UTC()
	body, _ := json.Marshal(apiv1.StatusReport{
		Cluster: cluster, Agent: apiv1.AgentInfo{ID: "sim-" + cluster}, SentAt: now,
		Apps: []apiv1.AppStatus{{
			App: changeApp, Generation: apiv1.Generation{Epoch: epoch, Sequence: seq}, Version: version,
			Revision: revision, Phase: apiv1.PhaseSynced, Health: apiv1.Health{Status: apiv1.HealthCurrent},
			LastSyncedAt: now,
		}},
	})
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, s.hubURL+apiv1.ReportPath, bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	start := time.Now()
	resp, err := s.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) && ue.Timeout() {
			return 0, "no answer within the client's timeout (" + s.client.Timeout.String() + ")"
		}
		return 0, err.Error()
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, "HTTP " + resp.Status
	}
	return time.Since(start), ""
}
