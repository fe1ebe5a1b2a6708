package cli

import (
	"github.com/spf13/cobra"
	"k8s.io/klog/v2"

	"github.com/outpost-gitops/outpost/cmd/outpost/demo"
)

func newDemoCommand(o *devOptions) *cobra.Command {
	cfg := demo.Config{}
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run Outpost on this machine: two local clusters, the hub seeded from examples/, one agent per cluster",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg.Out = cmd.OutOrStdout()
			cfg.BinDir = o.binDir
			cfg.SetGlobals = klog.SetSlogLogger
			return demo.Run(cmd.Context(), cfg)
		},
	}
	cmd.Flags().StringVar(&cfg.ListenAddr, "listen", "127.0.0.1:8080", "hub address (a free port is used when taken)")
	cmd.Flags().StringVar(&cfg.ExamplesDir, "examples", "examples", "GitOps repository to seed the hub with")
	cmd.Flags().StringVar(&cfg.StateDir, "demo-dir", ".outpost/demo", "directory for the demo's clusters, hub and agents (removed at the end)")
	return cmd
}
