package cli

import (
	"errors"
	"log/slog"
	"os"

	"github.com/spf13/cobra"

	"github.com/outpost-gitops/outpost/agent"
)

func newAgentCommand() *cobra.Command {
	cfg := agent.DefaultConfig()
	var logLevel string
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "Run the cluster agent: pull Git, sync this cluster's apps, watch drift, report to the hub",
		Long: `Run the cluster agent. Every flag can also be set with an OUTPOST_* environment
variable (--git-url → OUTPOST_GIT_URL); a flag given on the command line wins.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := agent.ApplyEnv(cmd.Flags(), os.LookupEnv); err != nil {
				return &UsageError{Err: err}
			}
			var level slog.Level
			if err := level.UnmarshalText([]byte(logLevel)); err != nil {
				return &UsageError{Err: errors.New("--log-level (OUTPOST_LOG_LEVEL): want debug, info, warn or error")}
			}
			log := slog.New(slog.NewJSONHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: level}))
			err := agent.Run(cmd.Context(), cfg, log)
			var ce *agent.ConfigError
			if errors.As(err, &ce) {
				return &UsageError{Err: err}
			}
			return err
		},
	}
	cfg.RegisterFlags(cmd.Flags())
	cmd.Flags().StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	return cmd
}
