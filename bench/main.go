// Command bench runs Outpost's benchmarks on the local testbed and writes
// bench/results/<date>.json and <date>.md (see docs/benchmarks.md).
//
//	go run ./bench [-quick] [-only noop-cost,apply-throughput] [-out bench/results]
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/go-logr/logr"
	"k8s.io/klog/v2"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/outpost-gitops/outpost/bench/internal/benchrun"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var cfg benchrun.Config
	var only string
	flag.BoolVar(&cfg.Quick, "quick", false, "small scale (make bench-quick)")
	flag.StringVar(&only, "only", "", "comma-separated measurements to run; all when empty ("+strings.Join(benchrun.Names(), ", ")+")")
	flag.StringVar(&cfg.OutDir, "out", "bench/results", "directory for <date>.json and <date>.md; empty writes nothing")
	flag.StringVar(&cfg.BinDir, "bin", "", "testbed binaries directory (default: $OUTPOST_TESTBIN_DIR or bin/)")
	flag.Parse()
	if only != "" {
		cfg.Only = strings.Split(only, ",")
	}
	// controller-runtime warns, with a stack, when its global logger is never set.
	ctrllog.SetLogger(logr.Discard())
	// The in-process agents set no global: client-go's warnings go to stderr like theirs.
	klog.SetSlogLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})).With("from", "client-go"))
	cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	rep, err := benchrun.Run(ctx, cfg)
	if rep != nil {
		fmt.Print(benchrun.Markdown(*rep))
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		stop()
		os.Exit(1)
	}
}
