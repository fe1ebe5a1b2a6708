package cli

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	apiv1 "github.com/outpost-gitops/outpost/api/v1"
)

// checkRolloutID refuses, before any request, what cannot be a rollout ID.
func checkRolloutID(id string) error {
	if !apiv1.IsRolloutID(id) {
		return &UsageError{Err: fmt.Errorf("ROLLOUT %q is not a rollout ID (see outpost rollout list)", id)}
	}
	return nil
}

func newRolloutCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "rollout",
		Short: "Roll an app out across clusters in waves, gated on health, with automatic rollback",
		Long: `A rollout moves one app to one version across the clusters of its policy,
rollouts/APP.yaml in the GitOps repository (see docs/rollouts.md): wave by wave, one
commit per wave, each cluster gated on reporting the version at that commit or later,
Synced and Current, for the wave's soak. When a wave fails beyond its maxFailures, the
run rolls every touched cluster back in one commit (or pauses, as the policy says).
While a run is active, manual writes of the app on its clusters are refused (409)
unless forced with --force, which pauses the run.`,
	}
	cmd.AddCommand(newRolloutStartCommand(), newRolloutStatusCommand(), newRolloutListCommand())
	for _, a := range []struct {
		action apiv1.RolloutAction
		short  string
	}{
		{apiv1.ActionPause, "Hold a run: nothing more is written until it resumes"},
		{apiv1.ActionResume, "Continue a paused run"},
		{apiv1.ActionApprove, "Let the wave that waits for an approval start"},
		{apiv1.ActionAbort, "Stop a run and leave every cluster as it is"},
		{apiv1.ActionRollback, "Set every cluster the run touched back to its previous version (one commit)"},
	} {
		cmd.AddCommand(newRolloutActionCommand(a.action, a.short))
	}
	return cmd
}

func newRolloutStartCommand() *cobra.Command {
	var f hubFlags
	cmd := &cobra.Command{
		Use:     "start APP VERSION",
		Short:   "Start a rollout of APP to VERSION following rollouts/APP.yaml",
		Example: "  outpost rollout start web 1.5.0",
		Args:    exactArgs(2, "APP VERSION"),
		RunE: func(cmd *cobra.Command, args []string) error {
			app, version := args[0], args[1]
			if err := checkName("app", app); err != nil {
				return err
			}
			if err := apiv1.ValidateVersion("VERSION", version); err != nil {
				return &UsageError{Err: err}
			}
			c, err := f.client()
			if err != nil {
				return err
			}
			r, err := c.StartRollout(cmd.Context(), app, version)
			if err != nil {
				return fmt.Errorf("start a rollout of %s=%s: %w", app, version, err)
			}
			return writeRollout(cmd.OutOrStdout(), f.output, r)
		},
	}
	f.register(cmd.Flags())
	return cmd
}

func newRolloutStatusCommand() *cobra.Command {
	var f hubFlags
	cmd := &cobra.Command{
		Use:   "status ROLLOUT|APP",
		Short: "Show a run: its waves, each cluster's phase, soak and last report, its commits",
		Long: `Show a run by its ID, or the newest run of an app by the app's name: the waves as
rows of clusters with their phase (Pending, Progressing, Soaking 12s/1m0s, Verified,
Failed, RolledBack, ...), the version each cluster had before, and the commits.`,
		Example: "  outpost rollout status web\n  outpost rollout status web-tn4q1c8a3f -o json",
		Args:    exactArgs(1, "ROLLOUT|APP"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkRolloutID(args[0]); err != nil {
				return err
			}
			c, err := f.client()
			if err != nil {
				return err
			}
			r, err := c.GetRollout(cmd.Context(), args[0])
			if code, ok := hubExitCode(err); ok && code == ExitNotFound && checkName("app", args[0]) == nil {
				list, lerr := c.ListRollouts(cmd.Context(), args[0], false)
				if lerr == nil && len(list.Rollouts) > 0 {
					r, err = &list.Rollouts[0], nil
				}
			}
			if err != nil {
				return fmt.Errorf("rollout %s: %w", args[0], err)
			}
			return writeRollout(cmd.OutOrStdout(), f.output, r)
		},
	}
	f.register(cmd.Flags())
	return cmd
}

func newRolloutListCommand() *cobra.Command {
	var f hubFlags
	var app string
	var active bool
	cmd := &cobra.Command{
		Use:   "list [--app APP] [--active]",
		Short: "List the runs, newest first",
		Args:  exactArgs(0, ""),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if app != "" {
				if err := checkName("app", app); err != nil {
					return err
				}
			}
			c, err := f.client()
			if err != nil {
				return err
			}
			list, err := c.ListRollouts(cmd.Context(), app, active)
			if err != nil {
				return fmt.Errorf("list rollouts: %w", err)
			}
			return write(cmd.OutOrStdout(), f.output, list, func(w io.Writer) error {
				tw := newTable(w)
				fmt.Fprintln(tw, "ROLLOUT\tAPP\tVERSION\tSTATE\tWAVE\tSTARTED\tBY")
				for _, r := range list.Rollouts {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, r.App, r.Version, r.State, waveName(&r), timestamp(r.CreatedAt), r.CreatedBy)
				}
				return tw.Flush()
			})
		},
	}
	f.register(cmd.Flags())
	cmd.Flags().StringVar(&app, "app", "", "only this app's runs")
	cmd.Flags().BoolVar(&active, "active", false, "only the runs that hold their clusters")
	return cmd
}

func newRolloutActionCommand(action apiv1.RolloutAction, short string) *cobra.Command {
	var f hubFlags
	cmd := &cobra.Command{
		Use:   string(action) + " ROLLOUT",
		Short: short,
		Args:  exactArgs(1, "ROLLOUT"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkRolloutID(args[0]); err != nil {
				return err
			}
			c, err := f.client()
			if err != nil {
				return err
			}
			r, err := c.RolloutAction(cmd.Context(), args[0], action)
			if err != nil {
				return fmt.Errorf("%s rollout %s: %w", action, args[0], err)
			}
			return writeRollout(cmd.OutOrStdout(), f.output, r)
		},
	}
	f.register(cmd.Flags())
	return cmd
}

func waveName(r *apiv1.Rollout) string {
	if r.Wave < len(r.Waves) {
		return fmt.Sprintf("%d/%d %s", r.Wave+1, len(r.Waves), r.Waves[r.Wave].Name)
	}
	return fmt.Sprintf("%d/%d done", len(r.Waves), len(r.Waves))
}

// clusterPhase is a cluster's phase for the table, with the soak clock while
// soaking.
func clusterPhase(r *apiv1.Rollout, c apiv1.RolloutCluster, now time.Time) string {
	if c.Phase == apiv1.ClusterSoaking && c.Wave < len(r.Waves) {
		soak := time.Duration(r.Waves[c.Wave].SoakSeconds) * time.Second
		return fmt.Sprintf("Soaking %s/%s", now.Sub(c.FirstHealthyAt).Truncate(time.Second), soak)
	}
	return string(c.Phase)
}

// writeRollout prints a run: a header, then one row per cluster, then its commits.
func writeRollout(w io.Writer, format string, r *apiv1.Rollout) error {
	return write(w, format, r, func(w io.Writer) error {
		fmt.Fprintf(w, "rollout %s: %s=%s, %s, wave %s\n", r.ID, r.App, r.Version, r.State, waveName(r))
		if r.Reason != "" {
			fmt.Fprintf(w, "reason: %s\n", r.Reason)
		}
		tw := newTable(w)
		fmt.Fprintln(tw, "WAVE\tCLUSTER\tPHASE\tPREVIOUS\tREPORTED\tMESSAGE")
		now := time.Now()
		for _, c := range r.Clusters {
			rep := "-"
			if c.Reported != nil {
				rep = fmt.Sprintf("%s %s/%s", orDash(c.Reported.Version), orDash(string(c.Reported.Phase)), orDash(string(c.Reported.Health)))
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.Waves[c.Wave].Name, c.Cluster, clusterPhase(r, c, now), orDash(c.Previous), rep, orDash(c.Message))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		for i, s := range r.Steps {
			what := "wave " + r.Waves[s.Wave].Name
			if s.Kind == apiv1.StepRollback {
				what = "rollback"
			}
			fmt.Fprintf(w, "commit %d: %s (%s) on %s\n", i, orDash(shortCommit(s.Commit)), what, strings.Join(s.Clusters, ", "))
		}
		return nil
	})
}
