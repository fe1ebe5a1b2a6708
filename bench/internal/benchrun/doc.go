// Package benchrun is Outpost's benchmark harness (make bench, make bench-quick).
//
// # Model
//
// A measurement is a function that starts what it needs (testbed clusters, a hub,
// agents, a Git server), measures, stops everything and returns a Result: typed
// figures, each with its raw samples, median, p99 and spread, and comparisons of an
// Outpost figure with a baseline measured in the same run, on the same apiserver,
// interleaved (the tools' order rotates per repetition). The machines are shared and
// noisy, so the harness reports medians, spreads and ratios and never judges an
// absolute timing; nothing here asserts a time.
//
// Run executes the selected measurements one after the other at the quick or full
// scale (sizes live in scaleFor), keeps going when one fails (its Result carries the
// error), and writes the Report as <date>.json and a Markdown table <date>.md.
// docs/benchmarks.md explains each figure and lists the peers' published anchors.
package benchrun
