package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/spf13/pflag"

	"github.com/outpost-gitops/outpost/internal/flagenv"
)

// Exit codes of Command, as ExitCode maps them: the same as the outpost CLI's.
const (
	ExitOK    = 0
	ExitError = 1
	ExitUsage = 2
)

// UsageError is a bad command line or configuration, as opposed to a failure of the
// agent's work.
type UsageError struct{ Err error }

func (e *UsageError) Error() string { return e.Err.Error() }
func (e *UsageError) Unwrap() error { return e.Err }

// Command runs the agent as a program (cmd/outpost-agent): it parses args (the flags of
// RegisterFlags plus --log-level), sets every flag not given from its OUTPOST_*
// variable found with lookup, logs JSON to stderr and calls Run until ctx ends. A bad
// flag or configuration is a *UsageError; --help prints the flags and returns
// pflag.ErrHelp. Command sets no process global: setGlobals, when not nil, receives the
// logger before Run starts, for what only a main may do (e.g. klog.SetSlogLogger).
func Command(ctx context.Context, args []string, lookup func(string) (string, bool), stderr io.Writer, setGlobals func(*slog.Logger)) error {
	cfg := DefaultConfig()
	fs := pflag.NewFlagSet("outpost-agent", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg.RegisterFlags(fs)
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return err
		}
		return &UsageError{Err: err}
	}
	if fs.NArg() > 0 {
		return &UsageError{Err: fmt.Errorf("unexpected arguments %q", fs.Args())}
	}
	if err := flagenv.Apply(fs, lookup); err != nil {
		return &UsageError{Err: err}
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return &UsageError{Err: errors.New("--log-level (OUTPOST_LOG_LEVEL): want debug, info, warn or error")}
	}
	log := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: level}))
	if setGlobals != nil {
		setGlobals(log)
	}
	err := Run(ctx, cfg, log)
	var ce *ConfigError
	if errors.As(err, &ce) {
		return &UsageError{Err: err}
	}
	return err
}

// ExitCode maps an error returned by Command to a process exit code.
func ExitCode(err error) int {
	var u *UsageError
	switch {
	case err == nil, errors.Is(err, pflag.ErrHelp):
		return ExitOK
	case errors.As(err, &u):
		return ExitUsage
	}
	return ExitError
}
