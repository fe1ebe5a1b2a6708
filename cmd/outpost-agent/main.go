// Command outpost-agent is the cluster agent alone: the same agent.Run as `outpost
// agent`, with the same flags and OUTPOST_* variables, but without the hub, its SQLite
// store and the CLI linked in, so that the process every cluster runs stays small (see
// the agent-footprint benchmark). It only parses flags and runs agent.Command, and
// sets the process globals: client-go's klog logs through the agent's logger.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"k8s.io/klog/v2"

	"github.com/outpost-gitops/outpost/agent"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := agent.Command(ctx, os.Args[1:], os.LookupEnv, os.Stderr, klog.SetSlogLogger)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "outpost-agent:", err)
		os.Exit(agent.ExitCode(err))
	}
}
