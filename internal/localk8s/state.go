package localk8s

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// stateFile is where a detached cluster records its processes, inside its directory.
const stateFile = "cluster.json"

// State describes a detached cluster, as written to Dir/cluster.json.
type State struct {
	// Name is the cluster's name.
	Name string `json:"name"`
	// Mode is "api" or "full".
	Mode string `json:"mode"`
	// Host is the apiserver URL.
	Host string `json:"host"`
	// Kubeconfig is the admin kubeconfig path.
	Kubeconfig string `json:"kubeconfig"`
	// PIDs are the components' process (and process group) ids, in start order.
	PIDs []int `json:"pids"`
	// Binaries are the executables of PIDs (absolute, symlink-free), index by index.
	Binaries []string `json:"binaries"`
	// StartTimes are the PIDs' start times (field 22 of /proc/<pid>/stat, in clock
	// ticks since boot), index by index. StopDetached signals a pid only while it is
	// still that process, so a reused pid is never killed.
	StartTimes []uint64 `json:"startTimes,omitempty"`
}

func (c *Cluster) writeState() error {
	st := State{Name: c.opts.Name, Mode: c.opts.Mode.String(), Host: c.host, Kubeconfig: c.kubeconfig, PIDs: c.PIDs()}
	for _, p := range c.procs {
		st.Binaries = append(st.Binaries, p.cmd.Path)
		info, err := readProc(p.pid())
		if err != nil {
			return fmt.Errorf("recording %s (pid %d): %w", p.name, p.pid(), err)
		}
		st.StartTimes = append(st.StartTimes, info.start)
	}
	data, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	path := filepath.Join(c.dir, stateFile)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return os.Rename(tmp, path)
}

// ReadState reads the state of a detached cluster kept in dir.
func ReadState(dir string) (*State, error) {
	path := filepath.Join(dir, stateFile)
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading cluster state: %w", err)
	}
	var st State
	if err := json.Unmarshal(data, &st); err != nil {
		return nil, fmt.Errorf("reading cluster state %s: %w", path, err)
	}
	return &st, nil
}

// StopDetached stops a cluster started with Options.Detach whose files are in dir:
// SIGTERM to each process group (newest first), SIGKILL to whatever remains after
// grace. It removes dir only once no process of the cluster runs any more (its recorded
// processes and their process groups), waiting up to verify for them to go; otherwise it
// returns a *StillRunningError naming them and keeps dir, the only record of them. A
// cluster whose processes are already gone is simply removed.
func StopDetached(dir string, grace, verify time.Duration) error {
	st, err := ReadState(dir)
	if err != nil {
		return err
	}
	if len(st.Binaries) != len(st.PIDs) || (st.StartTimes != nil && len(st.StartTimes) != len(st.PIDs)) {
		return fmt.Errorf("cluster state in %s: %d pids, %d binaries, %d start times", dir, len(st.PIDs), len(st.Binaries), len(st.StartTimes))
	}
	for i := len(st.PIDs) - 1; i >= 0; i-- {
		pid := st.PIDs[i]
		if !st.owns(i) {
			continue // gone, or the pid now belongs to another program
		}
		if err := killGroup(pid, syscall.SIGTERM); err != nil {
			return fmt.Errorf("stopping cluster %s pid %d: %w", st.Name, pid, err)
		}
		deadline := time.Now().Add(grace)
		for Alive(pid) && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		if err := killGroup(pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.EPERM) {
			return fmt.Errorf("killing cluster %s pid %d: %w", st.Name, pid, err)
		}
	}
	// Detached processes are not our children: init reaps them. Wait for the real
	// condition, every recorded process and group member gone, with a bound that
	// fits a loaded machine.
	deadline := time.Now().Add(verify)
	for {
		left := st.survivors()
		if len(left) == 0 {
			return os.RemoveAll(dir)
		}
		if time.Now().After(deadline) {
			return &StillRunningError{Cluster: st.Name, Dir: dir, PIDs: left}
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// StillRunningError is a detached cluster some of whose processes still run after
// StopDetached signalled them; its state directory is kept.
type StillRunningError struct {
	// Cluster is the cluster's name.
	Cluster string
	// Dir is the state directory, kept.
	Dir string
	// PIDs are the processes still running.
	PIDs []int
}

func (e *StillRunningError) Error() string {
	return fmt.Sprintf("cluster %s: processes %v still run after SIGKILL; its state is kept in %s (kill them, then run down again)", e.Cluster, e.PIDs, e.Dir)
}

// owns reports whether recorded process i still runs as that process: same start
// time (when recorded) and, for states written without start times, same executable.
func (st *State) owns(i int) bool {
	pid := st.PIDs[i]
	info, err := readProc(pid)
	if err != nil || info.zombie {
		return false
	}
	if st.StartTimes != nil {
		return info.start == st.StartTimes[i]
	}
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
	if err != nil {
		return !errors.Is(err, os.ErrNotExist) // unreadable: assume it may be ours
	}
	want := st.Binaries[i]
	if r, err := filepath.EvalSymlinks(want); err == nil {
		want = r
	}
	return exe == want || filepath.Base(exe) == filepath.Base(want)
}

// survivors returns the recorded processes that still run, and every live member of
// their process groups.
func (st *State) survivors() []int {
	var out []int
	for i, pid := range st.PIDs {
		if st.owns(i) {
			out = append(out, pid)
		}
	}
	return groupMembers(st.PIDs, out)
}

// groupMembers appends to out every live (non-zombie) process of the process groups
// pgids that out does not hold yet.
func groupMembers(pgids []int, out []int) []int {
	groups := map[int]bool{}
	for _, g := range pgids {
		groups[g] = true
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return out
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || slices.Contains(out, pid) {
			continue
		}
		if info, err := readProc(pid); err == nil && !info.zombie && groups[info.pgrp] {
			out = append(out, pid)
		}
	}
	return out
}

// procInfo is what StopDetached reads of a process from /proc/<pid>/stat.
type procInfo struct {
	zombie bool
	pgrp   int
	start  uint64
}

// readProc parses /proc/<pid>/stat: "pid (comm) state ppid pgrp ... starttime ...".
func readProc(pid int) (procInfo, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procInfo{}, err
	}
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return procInfo{}, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	f := strings.Fields(string(data[i+1:]))
	if len(f) < 20 {
		return procInfo{}, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	pgrp, err := strconv.Atoi(f[2])
	if err != nil {
		return procInfo{}, fmt.Errorf("/proc/%d/stat: pgrp: %w", pid, err)
	}
	start, err := strconv.ParseUint(f[19], 10, 64)
	if err != nil {
		return procInfo{}, fmt.Errorf("/proc/%d/stat: starttime: %w", pid, err)
	}
	return procInfo{zombie: f[0] == "Z", pgrp: pgrp, start: start}, nil
}
