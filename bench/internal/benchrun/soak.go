package benchrun

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/outpost-gitops/outpost/internal/localk8s"
)

const (
	// soakGoroutineLimit and soakRSSLimit are the soak's thresholds: the measurement
	// fails when the median of the last third of the samples exceeds the median of the
	// first third by more than this fraction.
	soakGoroutineLimit = 0.10
	soakRSSLimit       = 0.20
	// soakSettle is the quiet time after the first sync before counting requests.
	soakSettle = 10 * time.Second
	// soakDriftManager is the field manager of the injected edits (as `kubectl edit`).
	soakDriftManager = "kubectl-edit"
	// soakDriftWait bounds the wait, after the soak, for the last edits' drift.
	soakDriftWait = time.Minute
)

// agentScaleSoak is issue #15 B's large cluster: one agent process (outpost-agent,
// built like the image) with N apps of M objects on one api-mode cluster. It measures
// the first sync, the agent's steady-state requests to the apiserver (through a
// counting proxy, so only the agent's are counted), its memory, and then soaks it:
// one out-of-band edit per second for the soak's duration while its goroutines, Go
// heap and RSS are sampled; it fails when they grow beyond the thresholds, or when
// an edit's drift is not detected.
func agentScaleSoak(ctx context.Context, e *runEnv) (_ *Result, err error) {
	sc := e.scale
	n, m := sc.soakApps, sc.soakObjectsPerApp
	res := &Result{
		Name: "agent-scale-soak",
		Description: fmt.Sprintf("outpost-agent (built like the image, its own OS process, defaults) with %d apps of %d "+
			"objects (ConfigMaps of 256 bytes and headless Services, alternating) + a Namespace each, on one api-mode "+
			"testbed cluster, Git and reports through an in-process hub, drift policy report. The agent reaches the "+
			"apiserver through a counting reverse proxy in the harness (localk8s.Requests: a watch counts once, when "+
			"opened), so only its own requests are counted. First sync: exec → every app Synced at the hub (status read "+
			"every second). Steady state: after %s of quiet, the agent's requests in buckets of %s, scaled to per "+
			"minute. Soak: %s with one out-of-band edit per second (a merge patch of a different ConfigMap's data by "+
			"field manager %q); goroutines (go_goroutines) and Go heap in use from the agent's /metrics and RSS from "+
			"/proc, sampled every %s; growth is the median of the last third of the samples over the median of the "+
			"first third. Fails when goroutines grow more than %.0f%% or RSS more than %.0f%%, or when an edited "+
			"object never shows as drifted in the hub's status of the cluster (read every %s during the soak and "+
			"up to %s after it).", n, m, soakSettle, idleBucket, sc.soakDuration, soakDriftManager, sc.soakSample,
			soakGoroutineLimit*100, soakRSSLimit*100, driftSeenPoll, soakDriftWait),
		Scale: fmt.Sprintf("%d apps × %d objects (%d objects + %d Namespaces), soak %s", n, m, n*m, n, sc.soakDuration),
	}
	work, err := os.MkdirTemp("", "outpost-bench-soak-")
	if err != nil {
		return res, fmt.Errorf("work directory: %w", err)
	}
	defer func() { _ = os.RemoveAll(work) }()
	bin := filepath.Join(work, "outpost-agent")
	if err := buildLikeTheImage(ctx, bin, dedicatedAgent.pkg, dedicatedAgent.tags); err != nil {
		return res, err
	}
	cluster, err := e.startCluster(ctx, "bench-soak")
	if err != nil {
		return res, err
	}
	defer func() { _ = cluster.Stop() }()
	const name = "bench-soak"
	apps, err := footprintApps(n, m)
	if err != nil {
		return res, err
	}
	appNames := make([]string, 0, n)
	for i := range n {
		appNames = append(appNames, fmt.Sprintf("app-%03d", i))
	}
	seed := filepath.Join(work, "seed")
	if err := writeSeed(seed, []string{name}, apps); err != nil {
		return res, err
	}
	h, err := startHub(ctx, work, seed, e.componentLogger())
	if err != nil {
		return res, err
	}
	defer func() { _ = h.stop() }()
	token, err := h.register(ctx, work, name)
	if err != nil {
		return res, err
	}
	proxy, err := startKubeProxy(cluster.RESTConfig(), filepath.Join(work, "proxy.kubeconfig"))
	if err != nil {
		return res, err
	}
	defer proxy.stop()
	p, err := startAgentProcess(h, work, bin, dedicatedAgent, name, token, proxy.kubeconfig)
	if err != nil {
		return res, err
	}
	defer p.stop()
	e.log.Info("agent-scale-soak: agent started", "pid", p.pid, "apps", n, "pprof", "http://"+p.pprofAddr+"/debug/pprof/")

	// First sync.
	if err := p.waitSynced(ctx, h, name, appNames, time.Second, sc.soakSyncTimeout); err != nil {
		return res, err
	}
	firstSync := time.Since(p.started)
	st, err := procStatus(p.pid)
	if err != nil {
		return res, err
	}
	syncCPU, err := procCPU(p.pid)
	if err != nil {
		return res, err
	}
	w0, d0, r0 := proxy.req.Counts()
	e.log.Info("agent-scale-soak: first sync", "took", firstSync.Round(time.Millisecond))
	res.Figures = append(res.Figures,
		figure("first sync: exec → all apps Synced at the hub", "s", []float64{firstSync.Seconds()}),
		figure("first sync: agent CPU", "s", []float64{syncCPU.Seconds()}),
		figure("first sync: peak RSS", "MiB", []float64{st["VmHWM"] / 1024}),
		figure("first sync: requests", "requests", []float64{float64(w0 + d0 + r0)}),
	)
	res.Notes = append(res.Notes, fmt.Sprintf("first sync: %d reads, %d writes, %d dry-runs", r0, w0, d0))

	// Steady state: nothing changes.
	if err := sleep(ctx, soakSettle); err != nil {
		return res, err
	}
	perMinute := float64(time.Minute) / float64(idleBucket)
	var quietReads, quietWrites, quietRSS []float64
	for range max(1, int(sc.soakQuiet/idleBucket)) {
		proxy.req.Reset()
		if err := sleep(ctx, idleBucket); err != nil {
			return res, err
		}
		w, d, r := proxy.req.Counts()
		quietReads, quietWrites = append(quietReads, float64(r)*perMinute), append(quietWrites, float64(w+d)*perMinute)
		quietRSS = append(quietRSS, procRSSMB(p.pid))
	}
	res.Figures = append(res.Figures,
		figure("steady state: reads", "requests/min", quietReads),
		figure("steady state: writes and dry-runs", "requests/min", quietWrites),
		figure("steady state: RSS", "MiB", quietRSS),
	)

	// The full soak starts after the agent's first full resync (a burst of requests,
	// then quiet): the memory a resync of every app needs is then held from the first
	// third of the samples on, so growth compares like with like.
	if sc.soakAfterResync {
		took, err := waitResync(ctx, proxy.req, n, 8*time.Minute)
		if err != nil {
			return res, err
		}
		res.Notes = append(res.Notes, fmt.Sprintf("the soak started after the agent's first full resync (waited %s for it)", took.Round(time.Second)))
	}

	// Soak: one edit per second, samples every soakSample.
	c, err := client.New(cluster.RESTConfig(), client.Options{})
	if err != nil {
		return res, fmt.Errorf("client: %w", err)
	}
	metricsURL := "http://" + p.addr + "/metrics"
	before, err := scrapeMetrics(ctx, metricsURL)
	if err != nil {
		return res, err
	}
	var goroutines, heap, rss, soakReads, soakWrites []float64
	var edited []string // namespace/name of each edit, in order
	seen := &driftSeen{keys: map[string]bool{}}
	watchCtx, stopWatch := context.WithCancel(ctx)
	var watched sync.WaitGroup
	watched.Go(func() { seen.watch(watchCtx, h, name) })
	defer func() { stopWatch(); watched.Wait() }()
	proxy.req.Reset()
	edit := time.NewTicker(time.Second)
	defer edit.Stop()
	sample := time.NewTicker(sc.soakSample)
	defer sample.Stop()
	lastSample := time.Now()
	for end := time.Now().Add(sc.soakDuration); time.Now().Before(end); {
		select {
		case <-ctx.Done():
			return res, ctx.Err()
		case <-edit.C:
			key, err := injectDrift(ctx, c, len(edited), n, m)
			if err != nil {
				return res, err
			}
			edited = append(edited, key)
		case now := <-sample.C:
			if err := p.exited(); err != nil {
				return res, err
			}
			mt, err := scrapeMetrics(ctx, metricsURL)
			if err != nil {
				return res, err
			}
			goroutines = append(goroutines, mt["go_goroutines"])
			heap = append(heap, mt["go_memstats_heap_inuse_bytes"]/(1<<20))
			rss = append(rss, procRSSMB(p.pid))
			w, d, r := proxy.req.Counts()
			proxy.req.Reset()
			scale := float64(time.Minute) / float64(now.Sub(lastSample))
			soakReads, soakWrites = append(soakReads, float64(r)*scale), append(soakWrites, float64(w+d)*scale)
			lastSample = now
		}
	}
	// Every edit touched a different object: each must show as drift at the hub (read
	// every driftSeenPoll while the soak runs, so that a drift a resync corrected
	// later still counts).
	injected := len(edited)
	var found int
	for deadline := time.Now().Add(soakDriftWait); ; {
		found = seen.count(edited)
		if found == injected || time.Now().After(deadline) {
			break
		}
		if err := sleep(ctx, time.Second); err != nil {
			return res, err
		}
	}
	after, err := scrapeMetrics(ctx, metricsURL)
	if err != nil {
		return res, err
	}
	events := after["outpost_agent_drift_events_total"] - before["outpost_agent_drift_events_total"]
	drifted := after["outpost_agent_drifted_objects"]
	var atHub float64
	if s, err := h.admin.ClusterStatus(ctx, name); err == nil {
		for _, a := range s.Apps {
			atHub += float64(len(a.Drift))
		}
	}
	gGrowth, rGrowth, hGrowth := growth(goroutines), growth(rss), growth(heap)
	res.Figures = append(res.Figures,
		figure("soak: goroutines", "count", goroutines),
		figure("soak: Go heap in use", "MiB", heap),
		figure("soak: RSS", "MiB", rss),
		figure("soak: goroutine growth (last third / first third − 1)", "%", []float64{gGrowth * 100}),
		figure("soak: RSS growth (last third / first third − 1)", "%", []float64{rGrowth * 100}),
		figure("soak: Go heap growth (last third / first third − 1)", "%", []float64{hGrowth * 100}),
		figure("soak: reads", "requests/min", soakReads),
		figure("soak: writes and dry-runs", "requests/min", soakWrites),
		figure("soak: edits injected", "count", []float64{float64(injected)}),
		figure("soak: edits seen as drift at the hub", "count", []float64{float64(found)}),
		figure("soak: agent drift events (appeared or cleared)", "count", []float64{events}),
		figure("soak: drifted objects at the end (agent gauge)", "count", []float64{drifted}),
		figure("soak: drifted objects at the end (hub status)", "count", []float64{atHub}),
	)
	if sc.soakDuration >= 5*time.Minute {
		res.Notes = append(res.Notes, fmt.Sprintf("the agent's full resyncs (--interval, default 5 min, jittered) fall inside the soak of %s", sc.soakDuration))
	}
	res.Notes = append(res.Notes,
		"drifted objects stay drifted (policy report), so the agent's drift state grows by one object per edit: a bounded, expected growth")
	if missed := seen.missing(edited); len(missed) > 0 {
		res.Notes = append(res.Notes, fmt.Sprintf("edits never seen drifted at the hub (edit number: object): %s", strings.Join(missed[:min(len(missed), 30)], ", ")))
	}
	if fails := soakVerdict(gGrowth, rGrowth, injected, found); len(fails) > 0 {
		return res, thresholdError(strings.Join(fails, "; "))
	}
	return res, nil
}

// growth is how much the median of the last third of samples exceeds the median of
// the first third, as a fraction (0.1 is 10%); 0 with fewer than 3 samples.
func growth(samples []float64) float64 {
	k := len(samples) / 3
	if k == 0 {
		return 0
	}
	first, last := figure("", "", samples[:k]).Median, figure("", "", samples[len(samples)-k:]).Median
	if first == 0 {
		return 0
	}
	return last/first - 1
}

// soakVerdict lists the soak's failed checks: growth beyond the thresholds, and
// injected edits the hub never showed as drift.
func soakVerdict(goroutineGrowth, rssGrowth float64, injected, seen int) []string {
	var fails []string
	if goroutineGrowth > soakGoroutineLimit {
		fails = append(fails, fmt.Sprintf("goroutines grew %.1f%% (limit %.0f%%)", goroutineGrowth*100, soakGoroutineLimit*100))
	}
	if rssGrowth > soakRSSLimit {
		fails = append(fails, fmt.Sprintf("RSS grew %.1f%% (limit %.0f%%)", rssGrowth*100, soakRSSLimit*100))
	}
	if seen != injected {
		fails = append(fails, fmt.Sprintf("the hub showed the drift of %d of %d edits", seen, injected))
	}
	return fails
}

// waitResync waits for the agent's periodic full resync: more than minRequests
// requests, then 10 s without any. It returns how long it waited.
func waitResync(ctx context.Context, req *localk8s.Requests, minRequests int, timeout time.Duration) (time.Duration, error) {
	start := time.Now()
	req.Reset()
	burst, quiet, last := false, 0, 0
	for time.Since(start) < timeout {
		if err := sleep(ctx, time.Second); err != nil {
			return 0, err
		}
		w, d, r := req.Counts()
		total := w + d + r
		switch {
		case total > last:
			quiet = 0
		case burst:
			quiet++
		}
		last = total
		burst = burst || total > minRequests
		if burst && quiet >= 10 {
			return time.Since(start), nil
		}
	}
	return 0, fmt.Errorf("no full resync of the agent (more than %d requests, then 10 s of quiet) within %s", minRequests, timeout)
}

// driftSeenPoll is how often the soak reads the hub's status for drifted objects.
const driftSeenPoll = 2 * time.Second

// driftSeen collects the ConfigMaps the hub ever showed drifted, as namespace/name.
type driftSeen struct {
	mu   sync.Mutex
	keys map[string]bool
}

// watch reads cluster's status at the hub every driftSeenPoll until ctx ends.
func (d *driftSeen) watch(ctx context.Context, h *benchHub, cluster string) {
	for ctx.Err() == nil {
		if st, err := h.admin.ClusterStatus(ctx, cluster); err == nil {
			d.mu.Lock()
			for _, a := range st.Apps {
				for _, dr := range a.Drift {
					if dr.Object.Kind == "ConfigMap" {
						d.keys[dr.Object.Namespace+"/"+dr.Object.Name] = true
					}
				}
			}
			d.mu.Unlock()
		}
		_ = sleep(ctx, driftSeenPoll)
	}
}

// missing returns "i: key" for each keys[i] not seen.
func (d *driftSeen) missing(keys []string) []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []string
	for i, k := range keys {
		if !d.keys[k] {
			out = append(out, fmt.Sprintf("%d: %s", i, k))
		}
	}
	return out
}

// count returns how many of keys were seen.
func (d *driftSeen) count(keys []string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := 0
	for _, k := range keys {
		if d.keys[k] {
			n++
		}
	}
	return n
}

// injectDrift edits the k-th ConfigMap of the soak's apps (apps × objects, ConfigMaps
// at even indexes): every k names a different object until all were edited. It
// returns the object's namespace/name.
func injectDrift(ctx context.Context, c client.Client, k, apps, objects int) (key string, err error) {
	app, idx := driftTarget(k, apps, objects)
	cm := &unstructured.Unstructured{}
	cm.SetAPIVersion("v1")
	cm.SetKind("ConfigMap")
	cm.SetNamespace(fmt.Sprintf("app-%03d", app))
	cm.SetName(fmt.Sprintf("cm-%d", idx))
	patch := fmt.Sprintf(`{"data":{"payload":"drift-%d"}}`, k)
	if err := c.Patch(ctx, cm, client.RawPatch(types.MergePatchType, []byte(patch)), client.FieldOwner(soakDriftManager)); err != nil {
		return "", fmt.Errorf("edit ConfigMap %s/%s: %w", cm.GetNamespace(), cm.GetName(), err)
	}
	return cm.GetNamespace() + "/" + cm.GetName(), nil
}

// driftTarget is the app and object index of the k-th edit: the ConfigMaps (even
// indexes) of every app in turn, each once until all were edited.
func driftTarget(k, apps, objects int) (app, idx int) {
	return k % apps, 2 * ((k / apps) % ((objects + 1) / 2))
}

// thresholdError is a measurement that ran but missed a stated threshold: its
// figures are kept and it is reported as failed.
type thresholdError string

func (e thresholdError) Error() string { return "threshold exceeded: " + string(e) }

// kubeProxy is a reverse proxy in front of an apiserver that counts what goes
// through it; kubeconfig points at it (plain HTTP on loopback; the proxy holds the
// credentials).
type kubeProxy struct {
	req        *localk8s.Requests
	kubeconfig string
	srv        *http.Server
	wg         sync.WaitGroup
}

// startKubeProxy starts a counting proxy to the apiserver of cfg and writes a
// kubeconfig for it to kubeconfig.
func startKubeProxy(cfg *rest.Config, kubeconfig string) (*kubeProxy, error) {
	rt, err := rest.TransportFor(cfg)
	if err != nil {
		return nil, fmt.Errorf("apiserver transport: %w", err)
	}
	target, err := url.Parse(cfg.Host)
	if err != nil {
		return nil, fmt.Errorf("apiserver URL %s: %w", cfg.Host, err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("proxy listener: %w", err)
	}
	p := &kubeProxy{req: &localk8s.Requests{}, kubeconfig: kubeconfig}
	rp := &httputil.ReverseProxy{
		Rewrite:       func(pr *httputil.ProxyRequest) { pr.SetURL(target) },
		Transport:     p.req.Wrap(rt),
		FlushInterval: -1, // watches stream
		ErrorLog:      nil,
	}
	p.srv = &http.Server{Handler: rp, ReadHeaderTimeout: 10 * time.Second}
	kc := clientcmdapi.NewConfig()
	kc.Clusters["proxy"] = &clientcmdapi.Cluster{Server: "http://" + l.Addr().String()}
	kc.AuthInfos["proxy"] = &clientcmdapi.AuthInfo{}
	kc.Contexts["proxy"] = &clientcmdapi.Context{Cluster: "proxy", AuthInfo: "proxy"}
	kc.CurrentContext = "proxy"
	if err := clientcmd.WriteToFile(*kc, kubeconfig); err != nil {
		_ = l.Close()
		return nil, fmt.Errorf("proxy kubeconfig %s: %w", kubeconfig, err)
	}
	p.wg.Go(func() { _ = p.srv.Serve(l) })
	return p, nil
}

func (p *kubeProxy) stop() {
	_ = p.srv.Close()
	p.wg.Wait()
}

// scrapeMetrics reads a Prometheus text exposition and returns each metric's value
// summed over its labels.
func scrapeMetrics(ctx context.Context, url string) (map[string]float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", url, err)
	}
	return parseMetrics(string(body)), nil
}

// parseMetrics sums a Prometheus text exposition's samples per metric name.
func parseMetrics(text string) map[string]float64 {
	out := map[string]float64{}
	for line := range strings.Lines(text) {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, rest := line, ""
		if i := strings.IndexAny(line, "{ "); i >= 0 {
			name, rest = line[:i], line[i:]
		}
		if j := strings.LastIndexByte(rest, '}'); j >= 0 {
			rest = rest[j+1:]
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			continue
		}
		if v, err := strconv.ParseFloat(f[0], 64); err == nil {
			out[name] += v
		}
	}
	return out
}
