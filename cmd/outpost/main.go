// Command outpost is Outpost's single binary: the hub, the agent, the CLI that talks to
// the hub, and developer tools. It only builds a signal-aware context and runs the
// command tree; everything else lives in the packages it calls.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/outpost-gitops/outpost/cmd/outpost/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := cli.NewRootCommand(os.Stdout, os.Stderr).ExecuteContext(ctx)
	stop()
	if err != nil {
		if msg := err.Error(); msg != "" { // a diff with changes exits 1 silently
			fmt.Fprintln(os.Stderr, "outpost:", msg)
		}
		os.Exit(cli.ExitCode(err))
	}
}
