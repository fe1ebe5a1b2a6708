package cli

import (
	"context"
	"log/slog"

	"github.com/spf13/cobra"
	"k8s.io/klog/v2"

	"github.com/outpost-gitops/outpost/agent"
)

func newAgentCommand() *cobra.Command {
	cfg := agent.DefaultConfig()
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "Run the cluster agent: pull Git, sync this cluster's apps, watch drift, report to the hub",
		Long: `Run the cluster agent. Every flag can also be set with an OUTPOST_* environment
variable (--git-url → OUTPOST_GIT_URL); a flag given on the command line wins.`,
	}
	cfg.RegisterFlags(cmd.Flags())
	serverRunner(cmd, func(ctx context.Context, log *slog.Logger) error {
		klog.SetSlogLogger(log) // the process global agent.Run leaves alone: client-go logs through the agent's logger
		return agent.Run(ctx, cfg, log)
	})
	return cmd
}
