package cli

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/outpost-gitops/outpost/internal/localk8s"
)

// devOptions are the flags shared by `outpost dev` commands.
type devOptions struct {
	// stateDir holds one directory per local cluster.
	stateDir string
	// binDir holds the testbed binaries ("" means localk8s.DefaultBinDir).
	binDir string
}

func newDevCommand() *cobra.Command {
	o := &devOptions{}
	dev := &cobra.Command{Use: "dev", Short: "Developer tools: local clusters built from the Go module proxy"}
	dev.PersistentFlags().StringVar(&o.stateDir, "state-dir", ".outpost/clusters", "directory holding the local clusters' files")
	dev.PersistentFlags().StringVar(&o.binDir, "testbin-dir", os.Getenv(localk8s.BinDirEnv), "directory of the testbed binaries built by `make testbin` (env "+localk8s.BinDirEnv+")")
	cluster := &cobra.Command{Use: "cluster", Short: "Start, stop and list local Kubernetes clusters (etcd + kube-apiserver [+ controllers, scheduler, kwok])"}
	cluster.AddCommand(newClusterUpCommand(o), newClusterDownCommand(o), newClusterListCommand(o))
	dev.AddCommand(cluster, newDemoCommand(o))
	return dev
}

func (o *devOptions) clusterDir(name string) (string, error) {
	if errs := validation.IsDNS1123Label(name); len(errs) > 0 {
		return "", &UsageError{Err: fmt.Errorf("cluster name %q: %s", name, errs[0])}
	}
	return filepath.Abs(filepath.Join(o.stateDir, name))
}

func newClusterUpCommand(o *devOptions) *cobra.Command {
	var mode string
	var nodes int
	cmd := &cobra.Command{
		Use:   "up NAME",
		Short: "Start a named local cluster in the background and print its kubeconfig path",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir, err := o.clusterDir(args[0])
			if err != nil {
				return err
			}
			m, err := parseMode(mode)
			if err != nil {
				return err
			}
			if nodes < 1 {
				return &UsageError{Err: fmt.Errorf("--nodes: must be at least 1, got %d", nodes)}
			}
			if _, err := os.Stat(filepath.Join(dir, "cluster.json")); err == nil {
				return fmt.Errorf("cluster %s already exists in %s; run `outpost dev cluster down %s` first", args[0], dir, args[0])
			}
			c, err := localk8s.Start(cmd.Context(), localk8s.Options{
				Name: args[0], Mode: m, Nodes: nodes, BinDir: o.binDir, Dir: dir, Detach: true,
				Logger: slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), nil)),
			})
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "cluster %s (%s) is up in %s\n  kubeconfig: %s\n  try:        KUBECONFIG=%s %s get nodes\n  stop:       outpost dev cluster down %s\n",
				args[0], m, c.StartupDuration().Round(time.Millisecond), c.KubeconfigPath(), c.KubeconfigPath(), c.Binaries().Kubectl, args[0])
			return nil
		},
	}
	cmd.Flags().StringVar(&mode, "mode", "full", "api (etcd + kube-apiserver) or full (+ controller-manager, scheduler, kwok fake nodes)")
	cmd.Flags().IntVar(&nodes, "nodes", 2, "number of kwok fake nodes in full mode")
	return cmd
}

func newClusterDownCommand(o *devOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "down NAME",
		Short: "Stop a local cluster and remove its files",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir, err := o.clusterDir(args[0])
			if err != nil {
				return err
			}
			if err := localk8s.StopDetached(dir, 10*time.Second, time.Minute); err != nil {
				if errors.Is(err, os.ErrNotExist) {
					return fmt.Errorf("no local cluster %s in %s", args[0], o.stateDir)
				}
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "cluster %s stopped\n", args[0])
			return nil
		},
	}
}

func newClusterListCommand(o *devOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List local clusters",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			entries, err := os.ReadDir(o.stateDir)
			if errors.Is(err, os.ErrNotExist) {
				return nil
			}
			if err != nil {
				return err
			}
			for _, e := range entries {
				st, err := localk8s.ReadState(filepath.Join(o.stateDir, e.Name()))
				if err != nil {
					continue
				}
				up := len(st.PIDs) > 0 && localk8s.Alive(st.PIDs[len(st.PIDs)-1])
				state := "running"
				if !up {
					state = "stopped (run down to clean up)"
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%-16s %-5s %-8s %s\n", st.Name, st.Mode, state, st.Kubeconfig)
			}
			return nil
		},
	}
}

func parseMode(s string) (localk8s.Mode, error) {
	switch s {
	case "api":
		return localk8s.ModeAPI, nil
	case "full":
		return localk8s.ModeFull, nil
	}
	return 0, &UsageError{Err: fmt.Errorf("--mode: want api or full, got %q", s)}
}
