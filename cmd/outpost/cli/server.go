package cli

import (
	"context"
	"errors"
	"log/slog"
	"os"

	"github.com/spf13/cobra"

	"github.com/outpost-gitops/outpost/internal/flagenv"
)

// serverRunner adds what every server command (hub, agent) shares to cmd: the
// --log-level flag, OUTPOST_* variables for every flag, a JSON slog logger on stderr,
// and configuration errors as usage errors (exit code 2). run does the work.
func serverRunner(cmd *cobra.Command, run func(ctx context.Context, log *slog.Logger) error) {
	logLevel := cmd.Flags().String("log-level", "info", "debug, info, warn or error")
	cmd.Args = cobra.NoArgs
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := flagenv.Apply(cmd.Flags(), os.LookupEnv); err != nil {
			return &UsageError{Err: err}
		}
		var level slog.Level
		if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
			return &UsageError{Err: errors.New("--log-level (OUTPOST_LOG_LEVEL): want debug, info, warn or error")}
		}
		log := slog.New(slog.NewJSONHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: level}))
		err := run(cmd.Context(), log)
		var ce *flagenv.Error
		if errors.As(err, &ce) {
			return &UsageError{Err: err}
		}
		return err
	}
}
