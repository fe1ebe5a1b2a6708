package cli

import (
	"errors"
	"io"

	"github.com/spf13/cobra"
)

// Exit codes of the outpost binary, for scripts.
const (
	// ExitOK is success.
	ExitOK = 0
	// ExitError is any failure not classified below.
	ExitError = 1
	// ExitUsage is a bad flag, argument or configuration value.
	ExitUsage = 2
)

// UsageError marks an error caused by the command line or configuration, not by the
// work itself.
type UsageError struct{ Err error }

func (e *UsageError) Error() string { return e.Err.Error() }
func (e *UsageError) Unwrap() error { return e.Err }

// ExitCode maps an error returned by the command tree to a process exit code.
func ExitCode(err error) int {
	var u *UsageError
	switch {
	case err == nil:
		return ExitOK
	case errors.As(err, &u):
		return ExitUsage
	default:
		return ExitError
	}
}

// NewRootCommand builds the outpost command tree writing to out and errOut.
func NewRootCommand(out, errOut io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:           "outpost",
		Short:         "Outpost: multi-cluster GitOps with a hub and one agent per cluster",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(out)
	root.SetErr(errOut)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &UsageError{Err: err} })
	root.AddCommand(newDevCommand(), newAgentCommand())
	return root
}
