package benchrun

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"sigs.k8s.io/yaml"
)

// footprintTargetMB is the design brief's target for the idle agent's RSS at 100 apps
// (section 6), in MB (10^6 bytes; the figures are in MiB).
const footprintTargetMB = 40

// agentBinary is a way to run the agent as its own process.
type agentBinary struct {
	// label names the binary in figures.
	label string
	// pkg is the main package built for it.
	pkg string
	// args come before the agent's flags (the subcommand).
	args []string
	// tags are the build tags it is built with.
	tags string
}

var (
	// grpcnotrace keeps gRPC (linked by the OTLP exporter) from importing
	// golang.org/x/net/trace, whose html/template use disables the linker's dead-code
	// elimination of methods: the agent binary is then a third smaller.
	dedicatedAgent = agentBinary{label: "outpost-agent", pkg: "github.com/outpost-gitops/outpost/cmd/outpost-agent", tags: "grpcnotrace"}
	combinedAgent  = agentBinary{label: "outpost agent", pkg: "github.com/outpost-gitops/outpost/cmd/outpost", args: []string{"agent"}, tags: "grpcnotrace"}
)

// buildLikeTheImage builds the main package pkg into out as the Dockerfile builds the
// image's binaries (static, stripped, with tags), so that memory figures are those of
// what ships.
func buildLikeTheImage(ctx context.Context, out, pkg, tags string) error {
	build := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags=-s -w", "-tags="+tags, "-o", out, pkg)
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if msg, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("build %s: %v: %s", pkg, err, msg)
	}
	return nil
}

// agentFootprint runs the real agent binary as its own process against a fresh api-mode
// cluster with N apps and reads its memory and CPU from /proc: during the first sync
// and once it is idle.
func agentFootprint(ctx context.Context, e *runEnv) (_ *Result, err error) {
	sc := e.scale
	bins := []agentBinary{dedicatedAgent}
	if sc.footprintCombined {
		bins = append(bins, combinedAgent)
	}
	var labels []string
	for _, b := range bins {
		labels = append(labels, b.label)
	}
	res := &Result{
		Name: "agent-footprint",
		Description: fmt.Sprintf("The agent built by the bench as the Dockerfile builds it (CGO_ENABLED=0, -trimpath, "+
			"-ldflags '-s -w', -tags grpcnotrace) and run as its own OS process (%s; GOGC, "+
			"GOMEMLIMIT and GODEBUG unset, so the agent's defaults apply) against a fresh api-mode testbed cluster, Git and reports through "+
			"an in-process hub. Memory from /proc/<pid>: VmRSS, VmHWM (peak, i.e. during the first sync) and "+
			"smaps_rollup (Anonymous vs file-backed = Rss − Anonymous); CPU from utime+stime in /proc/<pid>/stat. "+
			"First sync: from exec until the hub shows every app Synced. Idle: after %s of quiet, RSS sampled "+
			"every second and CPU over %s, in cores; Go heap in use from the agent's /metrics.",
			strings.Join(labels, ", "), sc.footprintSettle, sc.footprintIdle),
		Scale: fmt.Sprintf("%v apps × %d objects (ConfigMaps and headless Services) + a Namespace each", sc.footprintApps, sc.noopObjectsPerApp),
	}
	work, err := os.MkdirTemp("", "outpost-bench-footprint-")
	if err != nil {
		return res, fmt.Errorf("work directory: %w", err)
	}
	defer func() { _ = os.RemoveAll(work) }()
	paths := map[string]string{}
	for _, b := range bins {
		p := filepath.Join(work, filepath.Base(b.pkg))
		if err := buildLikeTheImage(ctx, p, b.pkg, b.tags); err != nil {
			return res, err
		}
		if st, err := os.Stat(p); err == nil {
			res.Notes = append(res.Notes, fmt.Sprintf("%s binary: %.0f MB", b.label, float64(st.Size())/1e6))
		}
		paths[b.label] = p
	}

	seed := filepath.Join(work, "seed")
	type run struct {
		cluster string
		apps    int
		bin     agentBinary
	}
	var runs []run
	for _, n := range sc.footprintApps {
		apps, err := footprintApps(n, sc.noopObjectsPerApp)
		if err != nil {
			return res, err
		}
		var clusters []string
		for i, b := range bins {
			c := fmt.Sprintf("fp-%d-%d", n, i)
			clusters = append(clusters, c)
			runs = append(runs, run{cluster: c, apps: n, bin: b})
		}
		if err := writeSeed(seed, clusters, apps); err != nil {
			return res, err
		}
	}
	compLog := e.componentLogger()
	h, err := startHub(ctx, work, seed, compLog)
	if err != nil {
		return res, err
	}
	defer func() { _ = h.stop() }()

	for _, r := range runs {
		e.log.Info("agent footprint", "binary", r.bin.label, "apps", r.apps)
		m, err := measureFootprint(ctx, e, h, work, paths[r.bin.label], r.bin, r.cluster, r.apps)
		if err != nil {
			return res, fmt.Errorf("%s with %d apps: %w", r.bin.label, r.apps, err)
		}
		p := fmt.Sprintf("%s, %d apps: ", r.bin.label, r.apps)
		res.Figures = append(res.Figures,
			figure(p+"idle RSS", "MiB", m.idleRSS),
			figure(p+"idle RSS anonymous", "MiB", m.idleAnon),
			figure(p+"idle RSS file-backed", "MiB", m.idleFile),
			figure(p+"idle Go heap in use", "MiB", []float64{m.heapInuse}),
			figure(p+"idle CPU", "cores", m.idleCPU),
			figure(p+"peak RSS (first sync)", "MiB", []float64{m.peakRSS}),
			figure(p+"CPU of the first sync", "s", []float64{m.syncCPU.Seconds()}),
			figure(p+"first sync wall time", "s", []float64{m.syncWall.Seconds()}),
		)
		if r.apps == 100 && r.bin.label == dedicatedAgent.label {
			mb := figure("", "", m.idleRSS).Median * (1 << 20) / 1e6
			verdict := "met"
			if mb >= footprintTargetMB {
				verdict = "missed"
			}
			res.Notes = append(res.Notes, fmt.Sprintf("target %s: %s idle RSS at 100 apps median %.1f MB (target < %d MB)",
				verdict, r.bin.label, mb, footprintTargetMB))
		}
	}
	if len(bins) > 1 {
		for _, n := range sc.footprintApps {
			for _, what := range []string{"idle RSS", "peak RSS (first sync)", "CPU of the first sync"} {
				res.compare(fmt.Sprintf("%s, %d apps: %s", dedicatedAgent.label, n, what),
					fmt.Sprintf("%s, %d apps: %s", combinedAgent.label, n, what), "")
			}
		}
	}
	if !slices.Contains(sc.footprintApps, 100) {
		res.Notes = append(res.Notes, fmt.Sprintf("the target (idle RSS < %d MB) is set at 100 apps; this scale does not reach it", footprintTargetMB))
	}
	return res, nil
}

// footprintApps returns n apps of objects objects each (ConfigMaps of 256 bytes and
// headless Services, alternating) plus their Namespace.
func footprintApps(n, objects int) (map[string]map[string]string, error) {
	apps := map[string]map[string]string{}
	for i := range n {
		app := fmt.Sprintf("app-%03d", i)
		files := map[string]string{}
		for k, o := range appObjects(app, objects) {
			data, err := yaml.Marshal(o.Object)
			if err != nil {
				return nil, fmt.Errorf("encode %s/%s: %w", app, o.GetName(), err)
			}
			files[fmt.Sprintf("object-%02d.yaml", k)] = string(data)
		}
		apps[app] = namespacedApp(app, "", files)
	}
	return apps, nil
}

// footprint is what one agent process measured.
type footprint struct {
	syncWall, syncCPU  time.Duration
	peakRSS, heapInuse float64
	idleRSS            []float64
	idleAnon, idleFile []float64
	idleCPU            []float64
}

// measureFootprint starts a cluster and an agent process for it, waits for the first
// sync of its apps, then watches it idle.
func measureFootprint(ctx context.Context, e *runEnv, h *benchHub, work, bin string, b agentBinary, name string, apps int) (*footprint, error) {
	cluster, err := e.startCluster(ctx, name)
	if err != nil {
		return nil, err
	}
	defer func() { _ = cluster.Stop() }()
	token, err := h.register(ctx, work, name)
	if err != nil {
		return nil, err
	}
	p, err := startAgentProcess(h, work, bin, b, name, token, cluster.KubeconfigPath())
	if err != nil {
		return nil, err
	}
	defer p.stop()
	pid, addr, pprofAddr, start, exited := p.pid, p.addr, p.pprofAddr, p.started, p.exited
	e.log.Info("agent started", "pid", pid, "pprof", "http://"+pprofAddr+"/debug/pprof/")
	names := make([]string, apps)
	for i := range names {
		names[i] = fmt.Sprintf("app-%03d", i)
	}
	if err := p.waitSynced(ctx, h, name, names, 100*time.Millisecond, 3*time.Minute); err != nil {
		return nil, err
	}
	fp := &footprint{syncWall: time.Since(start)}
	st, err := procStatus(pid)
	if err != nil {
		return nil, err
	}
	fp.peakRSS = st["VmHWM"] / 1024
	if fp.syncCPU, err = procCPU(pid); err != nil {
		return nil, err
	}

	if err := sleep(ctx, e.scale.footprintSettle); err != nil {
		return nil, err
	}
	cpu0, err := procCPU(pid)
	if err != nil {
		return nil, err
	}
	t0 := time.Now()
	const cpuBuckets = 5
	bucket := e.scale.footprintIdle / cpuBuckets
	lastT := t0
	for time.Since(t0) < e.scale.footprintIdle {
		if err := sleep(ctx, time.Second); err != nil {
			return nil, err
		}
		if err := exited(); err != nil {
			return nil, err
		}
		sm, err := smapsRollup(pid)
		if err != nil {
			return nil, err
		}
		fp.idleRSS = append(fp.idleRSS, sm["Rss"]/1024)
		fp.idleAnon = append(fp.idleAnon, sm["Anonymous"]/1024)
		fp.idleFile = append(fp.idleFile, (sm["Rss"]-sm["Anonymous"])/1024)
		if now := time.Now(); now.Sub(lastT) >= bucket {
			cpu, err := procCPU(pid)
			if err != nil {
				return nil, err
			}
			fp.idleCPU = append(fp.idleCPU, (cpu-cpu0).Seconds()/now.Sub(lastT).Seconds())
			cpu0, lastT = cpu, now
		}
	}
	if fp.heapInuse, err = metricValue(ctx, "http://"+addr+"/metrics", "go_memstats_heap_inuse_bytes"); err != nil {
		return nil, err
	}
	fp.heapInuse /= 1 << 20
	if dir := os.Getenv(pprofDirEnv); dir != "" {
		// The idle agent's heap profile (after a GC): agent-heap-<binary>-<apps>.pprof.
		out := filepath.Join(dir, fmt.Sprintf("agent-heap-%s-%d.pprof", strings.ReplaceAll(b.label, " ", "-"), apps))
		if err := saveURL(ctx, "http://"+pprofAddr+"/debug/pprof/heap?gc=1", out); err != nil {
			return nil, err
		}
	}
	return fp, nil
}

// saveURL writes the body of a GET of url to the file out.
func saveURL(ctx context.Context, url, out string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("get %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("get %s: %s", url, resp.Status)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("read %s: %w", url, err)
	}
	if err := os.WriteFile(out, body, 0o644); err != nil {
		return fmt.Errorf("write %s: %w", out, err)
	}
	return nil
}

// footprintEnv is the bench's environment without the Go runtime's memory knobs, so
// the agent's own defaults are what is measured.
func footprintEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "GOGC=") || strings.HasPrefix(kv, "GOMEMLIMIT=") || strings.HasPrefix(kv, "GODEBUG=") {
			continue
		}
		env = append(env, kv)
	}
	return env
}

// metricValue fetches a Prometheus text exposition and returns the value of an
// unlabelled metric.
func metricValue(ctx context.Context, url, name string) (float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, fmt.Errorf("get %s: %w", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", url, err)
	}
	for _, line := range strings.Split(string(body), "\n") {
		if f := strings.Fields(line); len(f) == 2 && f[0] == name {
			return strconv.ParseFloat(f[1], 64)
		}
	}
	return 0, fmt.Errorf("%s: no metric %s", url, name)
}
