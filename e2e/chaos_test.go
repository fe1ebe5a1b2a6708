package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/outpost-gitops/outpost/internal/faultproxy"
	"github.com/outpost-gitops/outpost/internal/gittest"
	"github.com/outpost-gitops/outpost/internal/testenv"
	"github.com/outpost-gitops/outpost/sync/inventory"
	"github.com/outpost-gitops/outpost/sync/object"
)

// chaosFullEnv selects the full scale of the fault-injection suite (make chaos);
// unset, it runs at the small scale of make test.
const chaosFullEnv = "OUTPOST_CHAOS"

// chaosScale is the size of the faults: the app's objects and how long each fault
// lasts.
type chaosScale struct {
	objects  int           // ConfigMaps of the big app
	apiDown  time.Duration // how long kube-apiserver stays stopped
	etcdDown time.Duration // how long etcd stays stopped
	lease    time.Duration // the agents' --lease-duration
	converge time.Duration // bound of each convergence
}

// scaleOf returns the scale OUTPOST_CHAOS selects ("full", else small), with
// OUTPOST_CHAOS_API_DOWN (a duration) overriding how long kube-apiserver stays down.
func scaleOf(t *testing.T) chaosScale {
	sc := chaosScale{objects: 200, apiDown: 5 * time.Second, etcdDown: 3 * time.Second, lease: 4 * time.Second, converge: 2 * time.Minute}
	if os.Getenv(chaosFullEnv) == "full" {
		sc = chaosScale{objects: 200, apiDown: 30 * time.Second, etcdDown: 10 * time.Second, lease: 6 * time.Second, converge: 3 * time.Minute}
	}
	if v := os.Getenv(chaosFullEnv + "_API_DOWN"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			t.Fatalf("%s_API_DOWN=%q: want a positive duration such as 30s", chaosFullEnv, v)
		}
		sc.apiDown = d
	}
	return sc
}

// chaos is the testbed of the fault-injection suite: one api-mode cluster and one Git
// server shared by the faults; each fault is a "cluster" of the repository confined
// to its own namespace (--namespaces, inventories and Lease there), with a big app of
// scale.objects ConfigMaps and a small bystander app the fault must leave alone.
type chaos struct {
	t       *testing.T
	scale   chaosScale
	cluster *testenv.Cluster
	cs      kubernetes.Interface
	c       client.Client
	git     *gittest.Server
	dir     string
}

func newChaos(t *testing.T) *chaos {
	t.Helper()
	cluster, err := testenv.Start(t.Context(), testenv.Options{Name: "e2e-chaos"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cluster.Stop() })
	ch := &chaos{t: t, scale: scaleOf(t), cluster: cluster, dir: t.TempDir()}
	if ch.cs, err = kubernetes.NewForConfig(cluster.RESTConfig()); err != nil {
		t.Fatal(err)
	}
	ctrllog.SetLogger(logr.Discard()) // the assertions' controller-runtime client logs nothing useful
	if ch.c, err = client.New(cluster.RESTConfig(), client.Options{}); err != nil {
		t.Fatal(err)
	}
	ch.git = gittest.New(t, gittest.WithToken("chaos-git-token"))
	return ch
}

// figure logs one measurement in a form make chaos collects.
func figure(t *testing.T, fault string, kv ...any) {
	t.Helper()
	var b strings.Builder
	for i := 0; i+1 < len(kv); i += 2 {
		fmt.Fprintf(&b, " %v=%v", kv[i], kv[i+1])
	}
	t.Logf("CHAOS fault=%q%s", fault, b.String())
}

// site is one fault's cluster: its namespace, apps and agents.
type site struct {
	*chaos
	t    *testing.T
	name string // cluster name in Git and namespace
	big  string // app of scale.objects ConfigMaps
	by   string // bystander app: one ConfigMap
	// bystander are the resourceVersions of the objects the fault must not touch:
	// the bystander app's and an unmanaged ConfigMap.
	bystander map[string]string
}

// newSite creates the namespace, an unmanaged ConfigMap in it, and commits the
// cluster with both apps at version "1" and n objects of the big app.
func (ch *chaos) newSite(t *testing.T, name string) *site {
	t.Helper()
	s := &site{chaos: ch, t: t, name: name, big: name + "-big", by: name + "-by"}
	if _, err := ch.cs.CoreV1().Namespaces().Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	unmanaged := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "unmanaged", Namespace: name}, Data: map[string]string{"k": "v"}}
	if _, err := ch.cs.CoreV1().ConfigMaps(name).Create(t.Context(), unmanaged, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	files := s.appFiles(s.big, ch.scale.objects)
	for p, c := range s.appFiles(s.by, 1) {
		files[p] = c
	}
	files["clusters/"+name+"/cluster.yaml"] = "labels:\n  chaos: \"yes\"\n"
	files["clusters/"+name+"/apps.yaml"] = s.appsYAML("1")
	ch.git.Commit(t, files, "chaos: "+name, "")
	return s
}

// appFiles is an app of n ConfigMaps in the cluster's namespace, carrying the version.
func (s *site) appFiles(app string, n int) map[string]string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: %s-%03d\n  namespace: ${CLUSTER_NAME}\ndata:\n  version: \"${APP_VERSION}\"\n", app, i)
	}
	return map[string]string{"apps/" + app + "/objects.yaml": b.String()}
}

// appsYAML selects both apps, the big one at version.
func (s *site) appsYAML(version string) string {
	return fmt.Sprintf("apps:\n  - name: %s\n    version: %q\n  - name: %s\n    version: \"1\"\n", s.big, version, s.by)
}

// setVersion commits the big app's version.
func (s *site) setVersion(version string) {
	s.git.Commit(s.t, map[string]string{"clusters/" + s.name + "/apps.yaml": s.appsYAML(version)}, "chaos: "+s.big+"="+version, "")
}

// setObjects commits the big app with n objects.
func (s *site) setObjects(n int) {
	s.git.Commit(s.t, s.appFiles(s.big, n), fmt.Sprintf("chaos: %s with %d objects", s.big, n), "")
}

// agent is an agent process of a site with the proxy it reaches the apiserver
// through.
type agent struct {
	*proc
	kube *faultproxy.HTTP
	id   string
}

// agentOpts are the variations of startAgent.
type agentOpts struct {
	id          string // --identity; set: leader election on
	cacheDir    string // default: a new directory
	hubURL      string // with token: report to the hub
	tokenFile   string
	gitURL      string // default: the Git server's
	extraArgs   []string
	interval    string
	gitPollEach string
}

// startAgent starts an agent of the site, standalone unless opts name a hub.
func (s *site) startAgent(opts agentOpts) *agent {
	t := s.t
	t.Helper()
	kube, err := faultproxy.NewKube(s.cluster.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = kube.Close() })
	dir := t.TempDir()
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["c"] = &clientcmdapi.Cluster{Server: kube.URL()}
	cfg.AuthInfos["a"] = &clientcmdapi.AuthInfo{}
	cfg.Contexts["c"] = &clientcmdapi.Context{Cluster: "c", AuthInfo: "a"}
	cfg.CurrentContext = "c"
	kubeconfig := filepath.Join(dir, "kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, kubeconfig); err != nil {
		t.Fatal(err)
	}
	if opts.cacheDir == "" {
		opts.cacheDir = filepath.Join(dir, "cache")
	}
	if opts.gitURL == "" {
		opts.gitURL = s.git.URL()
	}
	if opts.interval == "" {
		opts.interval = "10m"
	}
	if opts.gitPollEach == "" {
		opts.gitPollEach = "1s"
	}
	args := []string{"agent", "--cluster=" + s.name, "--git-url=" + opts.gitURL,
		"--git-password-file=" + writeFile(t, filepath.Join(dir, "git-password"), s.git.Token()),
		"--kubeconfig=" + kubeconfig, "--namespaces=" + s.name, "--inventory-namespace=" + s.name,
		"--listen=", "--interval=" + opts.interval, "--git-poll-interval=" + opts.gitPollEach,
		"--cache-dir=" + opts.cacheDir}
	if opts.id != "" {
		args = append(args, "--leader-elect=true", "--identity="+opts.id, "--lease-namespace="+s.name,
			"--lease-name=chaos", "--lease-duration="+s.scale.lease.String())
	} else {
		args = append(args, "--leader-elect=false")
	}
	if opts.hubURL != "" {
		args = append(args, "--hub-url="+opts.hubURL, "--token-file="+opts.tokenFile)
	}
	args = append(args, opts.extraArgs...)
	name := "agent-" + s.name
	if opts.id != "" {
		name += "-" + opts.id
	}
	p, err := startProc(t, name, outpostBin, nil, args...)
	if err != nil {
		t.Fatal(err)
	}
	return &agent{proc: p, kube: kube, id: opts.id}
}

// signal sends sig to the agent's process group.
func (p *proc) signal(sig syscall.Signal) {
	if err := syscall.Kill(-p.cmd.Process.Pid, sig); err != nil {
		p.t.Errorf("%s: %s: %v", p.name, sig, err)
	}
}

// alive reports whether the process still runs.
func (p *proc) alive() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// atWrite calls f (once, on the request's goroutine, before it is forwarded) at the
// n-th write to an object of app through the agent's proxy from now on.
func (a *agent) atWrite(app, method string, n int, f func()) {
	var mu sync.Mutex
	seen := 0
	a.kube.OnRequest(func(r faultproxy.Request) error {
		if !r.Write() || r.Method != method || !strings.Contains(r.Path, "/configmaps/"+app+"-") {
			return nil
		}
		mu.Lock()
		seen++
		fire := seen == n
		mu.Unlock()
		if fire {
			f()
		}
		return nil
	})
}

// state is what the site's big app looks like in the cluster.
type state struct {
	live      map[string]string // name → data.version of the app's objects
	inventory map[string]bool   // name → recorded (the apply confirmed)
}

func (s *site) state(ctx context.Context) (state, error) {
	st := state{live: map[string]string{}, inventory: map[string]bool{}}
	var list corev1.ConfigMapList
	if err := s.c.List(ctx, &list, client.InNamespace(s.name)); err != nil {
		return st, err
	}
	owner := object.DefaultOwner()
	for _, cm := range list.Items {
		if owner.AppOf(cm.Labels) == s.big {
			st.live[cm.Name] = cm.Data["version"]
		}
	}
	inv, err := inventory.NewStore(s.c, inventory.StoreOptions{Namespace: s.name}).Load(ctx, s.big)
	if err != nil {
		return st, err
	}
	for _, e := range inv.Entries {
		st.inventory[e.Ref.Name] = !e.Record.IsZero()
	}
	return st, nil
}

// convergedTo compares the state with n objects at version: every object live with
// the version, none else of the app (nothing orphaned), the inventory listing exactly
// them, each with a confirmed apply.
func (st state) convergedTo(app string, n int, version string) error {
	want := map[string]bool{}
	for i := range n {
		want[fmt.Sprintf("%s-%03d", app, i)] = true
	}
	var problems []string
	for name := range want {
		switch v, ok := st.live[name]; {
		case !ok:
			problems = append(problems, name+" missing")
		case v != version:
			problems = append(problems, name+" at "+v)
		}
		if !st.inventory[name] {
			problems = append(problems, name+" not recorded in the inventory")
		}
	}
	for name := range st.live {
		if !want[name] {
			problems = append(problems, name+" orphaned (live, not desired)")
		}
	}
	for name := range st.inventory {
		if !want[name] {
			problems = append(problems, name+" in the inventory, not desired")
		}
	}
	if len(problems) == 0 {
		return nil
	}
	slices.Sort(problems)
	if len(problems) > 5 {
		problems = append(problems[:5], fmt.Sprintf("and %d more", len(problems)-5))
	}
	return fmt.Errorf("%s not converged to %d objects at %s: %s", app, n, version, strings.Join(problems, ", "))
}

// waitConverged waits until the big app has n objects at version and returns how
// long that took.
func (s *site) waitConverged(n int, version string) time.Duration {
	s.t.Helper()
	start := time.Now()
	var last error
	for time.Since(start) < s.scale.converge {
		st, err := s.state(s.t.Context())
		if err == nil {
			err = st.convergedTo(s.big, n, version)
		}
		if err == nil {
			return time.Since(start)
		}
		last = err
		time.Sleep(100 * time.Millisecond)
	}
	s.t.Fatalf("not within %s: %v", s.scale.converge, last)
	return 0
}

// recordBystanders notes the resourceVersions of the bystander app's object and of
// the unmanaged ConfigMap.
func (s *site) recordBystanders() {
	s.t.Helper()
	s.bystander = s.bystanderVersions()
	if len(s.bystander) != 2 {
		s.t.Fatalf("bystanders: %v, want the bystander app's object and the unmanaged ConfigMap", s.bystander)
	}
}

func (s *site) bystanderVersions() map[string]string {
	out := map[string]string{}
	for _, name := range []string{s.by + "-000", "unmanaged"} {
		cm, err := s.cs.CoreV1().ConfigMaps(s.name).Get(s.t.Context(), name, metav1.GetOptions{})
		if err == nil {
			out[name] = cm.ResourceVersion
		}
	}
	return out
}

// checkBystanders fails the test if an object the fault must not touch changed.
func (s *site) checkBystanders() {
	s.t.Helper()
	if got := s.bystanderVersions(); !mapsEqual(got, s.bystander) {
		s.t.Errorf("objects of another app or unmanaged were touched: resourceVersions %v, were %v", got, s.bystander)
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// leaseHolder returns the identity holding the site's Lease ("" when none).
func (s *site) leaseHolder() string {
	holder, _ := s.lease()
	return holder
}

// lease returns the identity holding the site's Lease ("" when none) and how often it
// changed hands.
func (s *site) lease() (holder string, transitions int32) {
	l, err := s.cs.CoordinationV1().Leases(s.name).Get(s.t.Context(), "chaos", metav1.GetOptions{})
	if err != nil {
		return "", -1
	}
	return ptr.Deref(l.Spec.HolderIdentity, ""), ptr.Deref(l.Spec.LeaseTransitions, 0)
}

// waitFor polls cond every 50 ms up to timeout and returns how long it took.
func (s *site) waitFor(what string, timeout time.Duration, cond func() bool) time.Duration {
	s.t.Helper()
	return eventually(s.t, what, timeout, cond)
}

// TestChaos is the fault-injection suite: each subtest injects one fault at a chosen
// moment into agents (and a hub) running as processes against a real apiserver, then
// checks the end state — the app's objects equal the desired render, nothing
// orphaned, the inventory lists exactly them, the objects of another app and
// unmanaged ones untouched — and logs the time to converge after the fault ended
// (lines "CHAOS fault=…", collected by make chaos into docs/reliability.md's figures).
// make test runs it at small scale; make chaos (OUTPOST_CHAOS=full) at full scale.
func TestChaos(t *testing.T) {
	if testing.Short() {
		t.Skip("fault-injection suite")
	}
	ch := newChaos(t)
	t.Run("PausedLeader", ch.pausedLeader)
	t.Run("AgentKilledMidApply", ch.agentKilledMidApply)
	t.Run("AgentKilledMidPrune", ch.agentKilledMidPrune)
	t.Run("APIServerStopped", ch.apiserverStopped)
	t.Run("EtcdRestarted", ch.etcdRestarted)
	t.Run("APIServerUnreachable", ch.apiserverUnreachable)
	t.Run("GitRewritten", ch.gitRewritten)
	t.Run("DiskFull", ch.diskFull)
	t.Run("HubKilledMidCommit", ch.hubKilledMidCommit)
	t.Run("HubKilledMidReports", ch.hubKilledMidReports)
	t.Run("Partitions", ch.partitions)
}

// pausedLeader: the leader is paused (SIGSTOP) in the middle of applying the big app,
// beyond its Lease; the standby takes over and converges, a newer version is
// committed and applied; the old leader resumes (SIGCONT) and must not write
// anything: the fence of its apiserver client (leader.Transport, checked just before
// each mutating request goes on the wire) fails at the first check after the pause,
// without a request. Should a write still get through (checked in the instant before
// the pause, sent after it), the new leader sees a write by its own field manager that
// its apply did not make and applies the app again: the app ends at the newest
// version either way, which the test checks after the resumed agent's grace period.
func (ch *chaos) pausedLeader(t *testing.T) {
	s := ch.newSite(t, "paused")
	n := ch.scale.objects
	a := s.startAgent(agentOpts{id: "a"})
	s.waitFor("agent a leads", 30*time.Second, func() bool { return s.leaseHolder() == "a" })
	s.waitConverged(n, "1")
	b := s.startAgent(agentOpts{id: "b"})
	s.recordBystanders()
	defer a.signal(syscall.SIGCONT) // never leave it stopped for the cleanup's SIGTERM

	paused := make(chan time.Time, 1)
	a.atWrite(s.big, "PATCH", 20, func() {
		a.signal(syscall.SIGSTOP)
		paused <- time.Now()
	})
	s.setVersion("2")
	var pausedAt time.Time
	select {
	case pausedAt = <-paused:
	case <-time.After(ch.scale.converge):
		t.Fatal("agent a never applied version 2")
	}
	a.kube.OnRequest(nil)
	took := s.waitFor("agent b takes the Lease", 3*ch.scale.lease+30*time.Second, func() bool { return s.leaseHolder() == "b" })
	_, transitions := s.lease()
	s.waitConverged(n, "2")
	s.setVersion("3")
	s.waitConverged(n, "3")
	failover := time.Since(pausedAt)

	resumed := time.Now()
	a.signal(syscall.SIGCONT)
	// The old leader had writes of version 2 pending; give it time to send them.
	time.Sleep(ch.scale.lease + 3*time.Second)
	if w := a.kube.Writes(resumed); len(w) > 0 {
		t.Errorf("the paused leader wrote %d times after it resumed:\n%v", len(w), w)
	}
	st, err := s.state(t.Context())
	if err == nil {
		err = st.convergedTo(s.big, n, "3")
	}
	if err != nil {
		t.Error(err)
	}
	// b's term goes on: the resumed leader neither took the Lease nor released b's.
	if h, n := s.lease(); h != "b" || n != transitions {
		t.Errorf("Lease held by %q after %d transitions once the old leader resumed, want b after %d", h, n, transitions)
	}
	if !a.alive() || !b.alive() {
		t.Error("an agent exited")
	}
	s.checkBystanders()
	figure(t, "paused leader (SIGSTOP beyond the Lease)", "objects", n, "lease", ch.scale.lease,
		"takeover_after_pause", took.Round(time.Millisecond), "converged_v3_after_pause", failover.Round(time.Millisecond),
		"writes_after_resume", len(a.kube.Writes(resumed)), "objects_lost", 0)
}

// agentKilledMidApply: SIGKILL while creating the big app; a new agent converges.
func (ch *chaos) agentKilledMidApply(t *testing.T) {
	s := ch.newSite(t, "killapply")
	n := ch.scale.objects
	cache := filepath.Join(t.TempDir(), "cache")
	a := s.startAgent(agentOpts{cacheDir: cache})
	killed := make(chan struct{})
	a.atWrite(s.big, "PATCH", n/2, func() {
		_ = syscall.Kill(-a.cmd.Process.Pid, syscall.SIGKILL)
		close(killed)
	})
	select {
	case <-killed:
	case <-time.After(ch.scale.converge):
		t.Fatal("the agent never applied half of the app")
	}
	<-a.done
	st, err := s.state(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(st.live) == 0 || len(st.live) >= n {
		t.Logf("at the kill: %d of %d objects live", len(st.live), n)
	}
	for name := range st.live {
		if _, listed := st.inventory[name]; !listed {
			t.Errorf("%s live but not in the inventory at the kill: it would be orphaned", name)
		}
	}
	s.recordBystanders()
	restart := time.Now()
	s.startAgent(agentOpts{cacheDir: cache})
	took := s.waitConverged(n, "1")
	s.checkBystanders()
	figure(t, "agent SIGKILL mid-apply", "objects", n, "live_at_kill", len(st.live),
		"converge_after_restart", time.Since(restart).Round(time.Millisecond), "poll", took.Round(time.Millisecond), "objects_lost", 0)
}

// agentKilledMidPrune: SIGKILL while the app shrinks to a tenth; a new agent prunes
// the rest, nothing orphaned.
func (ch *chaos) agentKilledMidPrune(t *testing.T) {
	s := ch.newSite(t, "killprune")
	n, keep := ch.scale.objects, ch.scale.objects/10
	cache := filepath.Join(t.TempDir(), "cache")
	a := s.startAgent(agentOpts{cacheDir: cache})
	s.waitConverged(n, "1")
	s.recordBystanders()
	killed := make(chan struct{})
	a.atWrite(s.big, "DELETE", (n-keep)/3, func() {
		_ = syscall.Kill(-a.cmd.Process.Pid, syscall.SIGKILL)
		close(killed)
	})
	s.setObjects(keep)
	select {
	case <-killed:
	case <-time.After(ch.scale.converge):
		t.Fatal("the agent never pruned a third of the app")
	}
	<-a.done
	st, err := s.state(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for name := range st.live {
		if _, listed := st.inventory[name]; !listed {
			t.Errorf("%s live but not in the inventory at the kill: it would be orphaned", name)
		}
	}
	restart := time.Now()
	s.startAgent(agentOpts{cacheDir: cache})
	s.waitConverged(keep, "1")
	s.checkBystanders()
	figure(t, "agent SIGKILL mid-prune", "objects", n, "kept", keep, "live_at_kill", len(st.live),
		"converge_after_restart", time.Since(restart).Round(time.Millisecond), "objects_orphaned", 0)
}

// apiserverStopped: kube-apiserver stopped in the middle of an apply for
// scale.apiDown; the agent keeps running and converges once it is back.
func (ch *chaos) apiserverStopped(t *testing.T) {
	ch.componentDown(t, "apidown", "kube-apiserver", ch.scale.apiDown)
}

// convergedSite starts a site with one agent (no leader election), waits until the
// big app is at version 1 and records the bystanders: where most faults start from.
func (ch *chaos) convergedSite(t *testing.T, name string) (*site, *agent) {
	t.Helper()
	s := ch.newSite(t, name)
	a := s.startAgent(agentOpts{})
	s.waitConverged(ch.scale.objects, "1")
	s.recordBystanders()
	return s, a
}

// apiserverUnreachable: the agent's apiserver answers 502 (a load balancer in front of
// it with nothing behind) until the failed app's retries have backed off to 8 s; when
// the apiserver answers again the agent notices within its 1 s probe and syncs the
// app at once, not at the end of the backoff: the app converges before the retry the
// agent had scheduled, read from its log.
func (ch *chaos) apiserverUnreachable(t *testing.T) {
	s, a := ch.convergedSite(t, "apiaway")
	n := ch.scale.objects
	var away atomic.Bool
	away.Store(true)
	a.kube.OnRequest(func(faultproxy.Request) error {
		if away.Load() {
			return errors.New("no apiserver behind this load balancer")
		}
		return nil
	})
	s.setVersion("2")
	// Away until the app's retries have backed off to 8 s: its next retry is due 8 s
	// after the one the agent just scheduled.
	awayFor := s.waitFor("the failed app's retry backed off to 8s", ch.scale.converge, func() bool {
		return lastRetry(a.log, s.big) >= 8*time.Second
	})
	away.Store(false)
	healed := time.Now()
	took := s.waitConverged(n, "2")
	converged := healed.Add(took)
	a.kube.OnRequest(nil)
	scheduled, early, err := retryTimes(a.log, s.big, healed)
	if err != nil {
		t.Fatal(err)
	}
	if !early {
		t.Error(`the agent did not log "the apiserver answers again"`)
	}
	if !converged.Before(scheduled) {
		t.Errorf("converged %s after the apiserver answered again, not before the retry scheduled for %s after",
			took.Round(time.Millisecond), scheduled.Sub(healed).Round(time.Millisecond))
	}
	s.checkBystanders()
	figure(t, "apiserver unreachable (502)", "objects", n, "away", awayFor.Round(time.Millisecond), "converge_after_heal", took.Round(time.Millisecond),
		"scheduled_retry_after_heal", scheduled.Sub(healed).Round(time.Millisecond), "objects_lost", 0)
}

// retryLine is the agent's log line of a scheduled retry (loop.retryLater), and of the
// early retry when the apiserver answers again.
type retryLine struct {
	Time  time.Time `json:"time"`
	Msg   string    `json:"msg"`
	App   string    `json:"app"`
	After int64     `json:"after"` // nanoseconds (slog's JSON of a Duration)
}

// agentLog returns the JSON lines of an agent's log.
func agentLog(logFile string) []retryLine {
	data, _ := os.ReadFile(logFile)
	var out []retryLine
	for _, line := range strings.Split(string(data), "\n") {
		var e retryLine
		if json.Unmarshal([]byte(line), &e) == nil {
			out = append(out, e)
		}
	}
	return out
}

// lastRetry returns the backoff of the last retry of app the agent scheduled (0: none).
func lastRetry(logFile, app string) time.Duration {
	var d time.Duration
	for _, e := range agentLog(logFile) {
		if e.Msg == "retrying the failed app" && e.App == app {
			d = time.Duration(e.After)
		}
	}
	return d
}

// retryTimes reads an agent's JSON log: when the last retry of app scheduled before
// healed was due, and whether the agent retried early because the apiserver answered
// again after healed.
func retryTimes(logFile, app string, healed time.Time) (scheduled time.Time, early bool, err error) {
	for _, e := range agentLog(logFile) {
		switch {
		case e.Msg == "retrying the failed app" && e.App == app && e.Time.Before(healed):
			scheduled = e.Time.Add(time.Duration(e.After))
		case strings.HasPrefix(e.Msg, "the apiserver answers again") && !e.Time.Before(healed):
			early = true
		}
	}
	if scheduled.IsZero() {
		return scheduled, early, fmt.Errorf("%s: no retry of %s scheduled before the apiserver answered again", logFile, app)
	}
	return scheduled, early, nil
}

// etcdRestarted: etcd stopped in the middle of an apply for scale.etcdDown, then
// started on the same data.
func (ch *chaos) etcdRestarted(t *testing.T) {
	ch.componentDown(t, "etcddown", "etcd", ch.scale.etcdDown)
}

func (ch *chaos) componentDown(t *testing.T, name, component string, down time.Duration) {
	s, a := ch.convergedSite(t, name)
	n := ch.scale.objects
	stopped := make(chan error, 1)
	a.atWrite(s.big, "PATCH", n/4, func() {
		go func() { stopped <- ch.cluster.StopComponent(component) }()
	})
	s.setVersion("2")
	select {
	case err := <-stopped:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(ch.scale.converge):
		t.Fatal("the agent never applied version 2")
	}
	a.kube.OnRequest(nil)
	time.Sleep(down)
	if !a.alive() {
		t.Fatalf("the agent exited while %s was down", component)
	}
	back := time.Now() // the fault ends: the component starts again
	if err := ch.cluster.StartComponent(t.Context(), component); err != nil {
		t.Fatal(err)
	}
	ready := time.Since(back)
	s.waitConverged(n, "2")
	took := time.Since(back)
	if !a.alive() {
		t.Error("the agent exited")
	}
	s.checkBystanders()
	figure(t, component+" stopped mid-apply", "objects", n, "down", down,
		"apiserver_ready_after_start", ready.Round(time.Millisecond), "converge_after_start", took.Round(time.Millisecond),
		"agent_restarts", 0, "objects_lost", 0)
}

// gitRewritten: the branch is force-pushed to a new history (same files, a new
// version) and then deleted. The agent follows the rewrite without deleting any
// object (no prune, no re-create: UIDs unchanged), keeps the last state while the
// branch is gone, and follows it again once it is back.
func (ch *chaos) gitRewritten(t *testing.T) {
	s, a := ch.convergedSite(t, "gitrewrite")
	n := ch.scale.objects
	uids := s.uids()
	since := time.Now()

	rewritten := ch.git.ForcePush(t, map[string]string{s.appsYAMLPath(): s.appsYAML("2")}, "chaos: rewritten history")
	took := s.waitConverged(n, "2")
	if del := deletes(a.kube.Writes(since)); len(del) > 0 {
		t.Errorf("the force-push made the agent delete: %v", del)
	}
	if got := s.uids(); !mapsEqual(got, uids) {
		t.Error("objects were re-created after the force-push (UIDs changed)")
	}

	ch.git.DeleteBranch(t)
	deleted := time.Now()
	time.Sleep(5 * time.Second) // several Git polls
	if w := a.kube.Writes(deleted); len(w) > 0 {
		t.Errorf("the agent wrote while the branch was gone: %v", w)
	}
	st, err := s.state(t.Context())
	if err == nil {
		err = st.convergedTo(s.big, n, "2")
	}
	if err != nil {
		t.Errorf("last state not kept while the branch was gone: %v", err)
	}
	if !a.alive() {
		t.Fatal("the agent exited when the branch was deleted")
	}
	if !strings.Contains(readFile(t, a.log), "keeping the last synced state") {
		t.Errorf("the agent's log does not say it keeps the last state:\n%s", tailLines(readFile(t, a.log), 10))
	}

	ch.git.SetBranch(t, rewritten)
	s.setVersion("3")
	back := s.waitConverged(n, "3")
	s.checkBystanders()
	figure(t, "git force-push and branch deleted", "objects", n, "converge_after_force_push", took.Round(time.Millisecond),
		"writes_while_branch_gone", 0, "converge_after_branch_back", back.Round(time.Millisecond), "objects_pruned", 0)
}

func (s *site) appsYAMLPath() string { return "clusters/" + s.name + "/apps.yaml" }

// uids returns the UIDs of the big app's objects.
func (s *site) uids() map[string]string {
	var list corev1.ConfigMapList
	if err := s.c.List(s.t.Context(), &list, client.InNamespace(s.name)); err != nil {
		s.t.Fatal(err)
	}
	out := map[string]string{}
	for _, cm := range list.Items {
		if strings.HasPrefix(cm.Name, s.big+"-") {
			out[cm.Name] = string(cm.UID)
		}
	}
	return out
}

func deletes(reqs []faultproxy.Request) []faultproxy.Request {
	var out []faultproxy.Request
	for _, r := range reqs {
		if r.Method == "DELETE" {
			out = append(out, r)
		}
	}
	return out
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}
