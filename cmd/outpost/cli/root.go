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
	// ExitNotFound is a hub answer 404: no such cluster, app or previous version.
	ExitNotFound = 3
	// ExitConflict is a hub answer 409: a stale If-Match, or a duplicate cluster.
	ExitConflict = 4
	// ExitAuth is a hub answer 401 or 403: the token is missing, unknown or not allowed.
	ExitAuth = 5
	// ExitUnreachable is a hub that did not answer, or answered 502, 503 or 504.
	ExitUnreachable = 6
)

// UsageError marks an error caused by the command line or configuration, not by the
// work itself.
type UsageError struct{ Err error }

func (e *UsageError) Error() string { return e.Err.Error() }
func (e *UsageError) Unwrap() error { return e.Err }

// ExitCode maps an error returned by the command tree to a process exit code.
func ExitCode(err error) int {
	var u *UsageError
	var st *ExitStatusError
	switch {
	case err == nil:
		return ExitOK
	case errors.As(err, &u):
		return ExitUsage
	case errors.As(err, &st):
		return st.Code
	}
	if code, ok := hubExitCode(err); ok {
		return code
	}
	return ExitError
}

// NewRootCommand builds the outpost command tree writing to out and errOut.
func NewRootCommand(out, errOut io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:           "outpost",
		Short:         "Outpost: multi-cluster GitOps with a hub and one agent per cluster",
		Long:          "Outpost: multi-cluster GitOps with a hub and one agent per cluster.\n\n" + exitCodesHelp,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(out)
	root.SetErr(errOut)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &UsageError{Err: err} })
	root.AddCommand(newDevCommand(), newAgentCommand(), newHubCommand(), newDiffCommand())
	root.AddCommand(hubVerbCommands()...)
	return root
}
