package cli

import (
	"errors"
	"log/slog"
	"os"

	"github.com/spf13/cobra"

	"github.com/outpost-gitops/outpost/hub"
	"github.com/outpost-gitops/outpost/internal/flagenv"
)

func newHubCommand() *cobra.Command {
	cfg := hub.DefaultConfig()
	var logLevel string
	cmd := &cobra.Command{
		Use:   "hub",
		Short: "Run the hub: desired versions in Git, the REST API, agents' reports and long-polls, the dashboard",
		Long: `Run the hub. It keeps its status database and the GitOps repository in --data-dir:
the embedded repository it creates (seeded from --git-seed) and serves to agents at
/git/<cluster>.git, or a clone of --git-url. The API is under /api/v1 (docs/api.md),
authenticated with the admin tokens of --admin-tokens-file ("name:token" per line; the
name authors the commits) and with per-cluster agent tokens from registration.

Every flag can also be set with an OUTPOST_* environment variable (--git-url →
OUTPOST_GIT_URL); a flag given on the command line wins.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {

			if err := flagenv.Apply(cmd.Flags(), os.LookupEnv); err != nil {
				return &UsageError{Err: err}
			}
			var level slog.Level
			if err := level.UnmarshalText([]byte(logLevel)); err != nil {
				return &UsageError{Err: errors.New("--log-level (OUTPOST_LOG_LEVEL): want debug, info, warn or error")}
			}
			log := slog.New(slog.NewJSONHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: level}))
			err := hub.Run(cmd.Context(), cfg, log)
			var ce *hub.ConfigError
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
