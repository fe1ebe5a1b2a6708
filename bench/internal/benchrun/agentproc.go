package benchrun

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	apiv1 "github.com/outpost-gitops/outpost/api/v1"
	"github.com/outpost-gitops/outpost/internal/localk8s"
)

// agentProcess is an agent running as its own OS process, its output in a log file.
type agentProcess struct {
	// pid is the process's id; addr serves /metrics, pprofAddr net/http/pprof.
	pid             int
	addr, pprofAddr string
	// started is when it was exec'd.
	started time.Time
	logPath string
	done    chan struct{}
}

// startAgentProcess runs the agent binary bin (b says how) for cluster name against the
// hub h, its apiserver reached through kubeconfig, with extra flags appended.
func startAgentProcess(h *benchHub, work, bin string, b agentBinary, name, token, kubeconfig string, extra ...string) (*agentProcess, error) {
	addr, err := localk8s.FreeAddr()
	if err != nil {
		return nil, err
	}
	pprofAddr, err := localk8s.FreeAddr()
	if err != nil {
		return nil, err
	}
	logPath := filepath.Join(work, name+".log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("agent log %s: %w", logPath, err)
	}
	args := append(append([]string{}, b.args...),
		"--cluster="+name, "--git-url="+h.url+"/git/"+name+".git", "--git-password-file="+token,
		"--hub-url="+h.url, "--token-file="+token, "--kubeconfig="+kubeconfig,
		"--listen="+addr, "--pprof-listen="+pprofAddr, "--cache-dir="+filepath.Join(work, "cache-"+name), "--leader-elect=false",
		"--identity=bench-"+name, "--git-poll-interval="+fleetGitPoll.String(), "--log-level=warn")
	cmd := exec.Command(bin, append(args, extra...)...)
	cmd.Env = footprintEnv()
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	p := &agentProcess{addr: addr, pprofAddr: pprofAddr, logPath: logPath, done: make(chan struct{}), started: time.Now()}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	logFile.Close()
	p.pid = cmd.Process.Pid
	go func() { _ = cmd.Wait(); close(p.done) }()
	return p, nil
}

// stop ends the agent with SIGTERM, and SIGKILL after 20 s.
func (p *agentProcess) stop() {
	_ = syscall.Kill(-p.pid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(20 * time.Second):
		_ = syscall.Kill(-p.pid, syscall.SIGKILL)
		<-p.done
	}
}

// exited returns an error quoting the end of the agent's log when it has exited.
func (p *agentProcess) exited() error {
	select {
	case <-p.done:
		log, _ := os.ReadFile(p.logPath)
		return fmt.Errorf("agent exited: %s", lastLines(string(log), 5))
	default:
		return nil
	}
}

// waitSynced waits until the hub shows every app of apps at version "1" Synced for
// cluster name, reading its status every interval; it gives up when the agent exits.
func (p *agentProcess) waitSynced(ctx context.Context, h *benchHub, name string, apps []string, interval, timeout time.Duration) error {
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-p.done:
		case <-wctx.Done():
		}
		cancel()
	}()
	_, err := waitHub(wctx, h.admin, name, interval, timeout, allSyncedAt(apps, "1"))
	if err != nil {
		if xerr := p.exited(); xerr != nil {
			return xerr
		}
		return fmt.Errorf("agent did not sync every app: %w", err)
	}
	return nil
}

// allSyncedAt holds when every app of apps is at version, Synced, at the hub.
func allSyncedAt(apps []string, version string) func(*apiv1.ClusterStatus) bool {
	return func(st *apiv1.ClusterStatus) bool {
		for _, app := range apps {
			if a, ok := appState(st, app); !ok || a.Version != version || a.Phase != apiv1.PhaseSynced {
				return false
			}
		}
		return true
	}
}
