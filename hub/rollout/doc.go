// Package rollout moves one app to one version across a fleet, wave by wave, gated
// on health, and rolls it back by itself when a wave fails.
//
// The model: a policy in Git (rollouts/<app>.yaml, sync/repo.RolloutPolicy) and a
// run in the hub's store (api/v1 Rollout). A run's only effect is commits: one per
// batch of a wave (all of a wave's clusters by default) and one for a rollback,
// each carrying trailers that name the run and the step (Outpost-Rollout,
// Outpost-Step, Outpost-Wave), so the history shows them and a hub killed between
// the commit and its bookkeeping finds the commit again.
//
// The logic is split as plan and I/O:
//   - plan.go holds pure functions: NewRun builds a run from a policy and the head's
//     clusters; Advance takes a run, what each cluster reported, and the time, and
//     returns the next run (its gates, soak clocks, failures, the next step to
//     write) and the events; Act applies a person's action; Record applies the
//     outcome of a commit. None of them does I/O, and they are tested with tables.
//   - driver.go does the I/O: it holds a lease in the store so that one hub process
//     drives runs at a time, writes each planned step (first looking for a commit
//     of that step already in Git), reads the reports, and saves each new state
//     with compare-and-swap.
//
// The gate never trusts a stale report: a cluster passes only when it reports the
// run's version at the step's commit or a descendant, Synced and Current, and stays
// so for the wave's soak. It fails on a failed sync or health at that commit, or
// when the progress deadline passes without a pass.
package rollout
