package testenv

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
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
	// Binaries are the executables of PIDs, index by index. StopDetached signals a pid
	// only while it still runs that executable, so a reused pid is never killed.
	Binaries []string `json:"binaries"`
}

func (c *Cluster) writeState() error {
	st := State{Name: c.opts.Name, Mode: c.opts.Mode.String(), Host: c.host, Kubeconfig: c.kubeconfig, PIDs: c.PIDs()}
	for _, p := range c.procs {
		st.Binaries = append(st.Binaries, p.cmd.Path)
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
// grace. It then removes dir. A cluster whose processes are already gone is simply
// removed.
func StopDetached(dir string, grace time.Duration) error {
	st, err := ReadState(dir)
	if err != nil {
		return err
	}
	if len(st.Binaries) != len(st.PIDs) {
		return fmt.Errorf("cluster state in %s: %d pids but %d binaries", dir, len(st.PIDs), len(st.Binaries))
	}
	for i := len(st.PIDs) - 1; i >= 0; i-- {
		pid := st.PIDs[i]
		if exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid)); err != nil || exe != st.Binaries[i] {
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
	return os.RemoveAll(dir)
}
