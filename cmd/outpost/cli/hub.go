package cli

import (
	"context"
	"log/slog"

	"github.com/spf13/cobra"

	"github.com/outpost-gitops/outpost/hub"
)

func newHubCommand() *cobra.Command {
	cfg := hub.DefaultConfig()
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
	}
	cfg.RegisterFlags(cmd.Flags())
	serverRunner(cmd, func(ctx context.Context, log *slog.Logger) error { return hub.Run(ctx, cfg, log) })
	return cmd
}
