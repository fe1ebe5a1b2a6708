package cli

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	apiv1 "github.com/outpost-gitops/outpost/api/v1"
	"github.com/outpost-gitops/outpost/internal/hubapi"
	"github.com/outpost-gitops/outpost/sync/fleetdiff"
)

// appWriteFlags are the flags of set, unset and rollback.
type appWriteFlags struct {
	hubFlags
	clusters []string
	selector string
	dryRun   bool
	ifMatch  string
	force    bool
}

func (f *appWriteFlags) register(cmd *cobra.Command) {
	f.hubFlags.register(cmd.Flags())
	cmd.Flags().StringSliceVarP(&f.clusters, "cluster", "c", nil,
		"a cluster; repeat (or separate with commas) for several: one commit for all")
	cmd.Flags().StringVarP(&f.selector, "selector", "l", "",
		"every cluster whose cluster.yaml labels match this label selector, e.g. 'env=prod,region in (eu,us),!canary': one commit for all")
	cmd.Flags().BoolVar(&f.dryRun, "dry-run", false, "show what would change on each cluster; commit nothing")
	cmd.Flags().StringVar(&f.ifMatch, "if-match", "",
		"write only if the desired state of the clusters written is still at this revision (else exit code 4)")
	cmd.Flags().BoolVar(&f.force, "force", false,
		"write even on clusters an active rollout of the app holds (the run marks them overridden and pauses)")
}

// check validates the clusters, selector, app and revision before any request.
func (f *appWriteFlags) check(app string) error {
	if len(f.clusters) == 0 && f.selector == "" {
		return &UsageError{Err: fmt.Errorf("--cluster or --selector is required")}
	}
	if len(f.clusters) > apiv1.MaxBulkClusters {
		return &UsageError{Err: fmt.Errorf("--cluster: %d clusters, more than the limit of %d", len(f.clusters), apiv1.MaxBulkClusters)}
	}
	if len(f.selector) > apiv1.MaxSelectorLen {
		return &UsageError{Err: fmt.Errorf("--selector: %d bytes, more than the limit of %d", len(f.selector), apiv1.MaxSelectorLen)}
	}
	for _, c := range f.clusters {
		if err := checkName("cluster", c); err != nil {
			return err
		}
	}
	return firstErr(checkName("app", app), checkIfMatch(f.ifMatch))
}

// bulk tells whether the write goes through the bulk route: a selector, more than
// one cluster, or a dry run.
func (f *appWriteFlags) bulk() bool {
	return f.selector != "" || len(f.clusters) != 1 || f.dryRun
}

// run makes the write and prints its result: one cluster through the cluster's route,
// else one bulk commit (action and version) through the app's bulk route.
func (f *appWriteFlags) run(cmd *cobra.Command, what, app string, action apiv1.BulkAction, version string,
	write func(ctx context.Context, c *hubapi.Client, cluster string, opts hubapi.WriteOptions) (*apiv1.ChangeResult, error)) error {
	c, err := f.client()
	if err != nil {
		return err
	}
	if f.bulk() {
		return runBulk(cmd, c, f.output, what, app, apiv1.BulkRequest{
			Action: action, Version: version, Selector: f.selector, Clusters: f.clusters,
			DryRun: f.dryRun, IfMatch: strings.Trim(f.ifMatch, `"`),
		}, f.force)
	}
	res, err := write(cmd.Context(), c, f.clusters[0], hubapi.WriteOptions{IfMatch: f.ifMatch, Force: f.force})
	if err != nil {
		return fmt.Errorf("%s on cluster %s: %w", what, f.clusters[0], err)
	}
	return writeChange(cmd.OutOrStdout(), f.output, res)
}

// runBulk sends one bulk write and prints its table.
func runBulk(cmd *cobra.Command, c *hubapi.Client, format, what, app string, req apiv1.BulkRequest, force bool) error {
	res, err := c.Bulk(cmd.Context(), app, req, hubapi.WriteOptions{Force: force})
	if err != nil {
		return fmt.Errorf("%s on %s: %w", what, selectionText(req), err)
	}
	return write(cmd.OutOrStdout(), format, res, func(w io.Writer) error {
		if err := bulkTable(w, res); err != nil {
			return err
		}
		return previewDiff(cmd.Context(), w, c, res)
	})
}

// previewDiff prints, after a dry run's table, what the write would do to every
// cluster: the hub renders its preview commit against the current revision.
func previewDiff(ctx context.Context, w io.Writer, c *hubapi.Client, res *apiv1.BulkResult) error {
	if !res.DryRun || res.PreviewRevision == "" {
		return nil
	}
	d, err := c.Diff(ctx, res.Revision, res.PreviewRevision)
	if err != nil {
		_, err = fmt.Fprintf(w, "\nthe rendered diff is not available: %v\n", err)
		return err
	}
	if _, err := fmt.Fprintln(w, "\nrendered, per cluster (what the agents would apply):"); err != nil {
		return err
	}
	return fleetdiff.WriteText(w, d, false)
}

// selectionText names a bulk write's selection for an error message.
func selectionText(req apiv1.BulkRequest) string {
	var parts []string
	if req.Selector != "" {
		parts = append(parts, fmt.Sprintf("the clusters matching %q", req.Selector))
	}
	if len(req.Clusters) > 0 {
		parts = append(parts, "clusters "+strings.Join(req.Clusters, ", "))
	}
	return strings.Join(parts, " and ")
}

// bulkTable prints a bulk write: one row per selected cluster, then the commit.
func bulkTable(w io.Writer, res *apiv1.BulkResult) error {
	tw := newTable(w)
	fmt.Fprintln(tw, "CLUSTER\tFROM\tTO\tCHANGE")
	for _, ch := range res.Changes {
		change := "unchanged"
		if ch.Changed {
			change = string(res.Action)
			if res.DryRun {
				change = "would " + change
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", ch.Cluster, orDash(ch.PreviousVersion), orDash(ch.Version), change)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	subject, _, _ := strings.Cut(res.Message, "\n")
	var err error
	switch {
	case res.DryRun:
		_, err = fmt.Fprintf(w, "dry run, nothing committed: %s\nat revision %s\n", subject, res.Revision)
	case !res.Committed:
		_, err = fmt.Fprintf(w, "no change: every selected cluster already is as asked\nrevision %s\n", res.Revision)
	default:
		_, err = fmt.Fprintf(w, "%s (one commit)\nrevision %s\n", subject, res.Revision)
	}
	return err
}

func writeChange(w io.Writer, format string, res *apiv1.ChangeResult) error {
	return write(w, format, res, func(w io.Writer) error {
		var err error
		switch {
		case !res.Changed && res.Version != "":
			_, err = fmt.Fprintf(w, "no change: %s is already %s on %s\n", res.App, res.Version, res.Cluster)
		case !res.Changed:
			_, err = fmt.Fprintf(w, "no change: %s is not set on %s\n", res.App, res.Cluster)
		case res.PreviousVersion != "":
			_, err = fmt.Fprintf(w, "%s (was %s)\n", res.Message, res.PreviousVersion)
		default:
			_, err = fmt.Fprintln(w, res.Message)
		}
		if err == nil && res.Revision != "" {
			_, err = fmt.Fprintf(w, "revision %s\n", res.Revision)
		}
		return err
	})
}

func newSetCommand() *cobra.Command {
	var f appWriteFlags
	cmd := &cobra.Command{
		Use:   "set APP VERSION (--cluster CLUSTER... | --selector SELECTOR)",
		Short: "Set the version of an app on one or many clusters (one Git commit, authored by you)",
		Long: `Set the version of an app on a cluster, adding the app to the cluster if needed. The
hub commits the change to clusters/CLUSTER/apps.yaml with you (your token) as author.
With --if-match REV the change is made only if the cluster's desired state did not
change since revision REV (else exit code 4, nothing committed).

With --selector (a Kubernetes label selector over the clusters' cluster.yaml labels) or
several --cluster, every selected cluster is changed in ONE commit, all or nothing: if
any cluster refuses the change, nothing is committed and the error names it. --dry-run
prints what would change. --if-match then guards the selection and every selected
apps.yaml.`,
		Example: "  outpost set web 1.4.3 --cluster prod-eu\n" +
			"  outpost set web 1.4.3 --cluster prod-eu --if-match 9a8b7c6d5e4f30211203f4e5d6c7b8a9a0b1c2d3\n" +
			"  outpost set web 1.4.3 --selector 'env=prod,region in (eu),!canary' --dry-run\n" +
			"  outpost set web 1.4.3 -c prod-eu -c prod-us",
		Args: exactArgs(2, "APP VERSION"),
		RunE: func(cmd *cobra.Command, args []string) error {
			app, version := args[0], args[1]
			if err := f.check(app); err != nil {
				return err
			}
			if err := apiv1.ValidateVersion("VERSION", version); err != nil {
				return &UsageError{Err: err}
			}
			return f.run(cmd, "set "+app+"="+version, app, apiv1.BulkSet, version,
				func(ctx context.Context, c *hubapi.Client, cluster string, opts hubapi.WriteOptions) (*apiv1.ChangeResult, error) {
					return c.SetVersion(ctx, cluster, app, version, opts)
				})
		},
	}
	f.register(cmd)
	return cmd
}

func newUnsetCommand() *cobra.Command {
	var f appWriteFlags
	cmd := &cobra.Command{
		Use:   "unset APP (--cluster CLUSTER... | --selector SELECTOR)",
		Short: "Remove an app from one or many clusters (one Git commit; the agents prune it)",
		Long: `Remove an app from a cluster; its agent prunes its objects. With --selector or several
--cluster, from every selected cluster in one commit, all or nothing (a selected cluster
that does not list the app refuses the whole write: exit code 3).`,
		Example: "  outpost unset web --cluster staging\n  outpost unset web --selector env=dev --dry-run",
		Args:    exactArgs(1, "APP"),
		RunE: func(cmd *cobra.Command, args []string) error {
			app := args[0]
			if err := f.check(app); err != nil {
				return err
			}
			return f.run(cmd, "unset "+app, app, apiv1.BulkUnset, "",
				func(ctx context.Context, c *hubapi.Client, cluster string, opts hubapi.WriteOptions) (*apiv1.ChangeResult, error) {
					return c.UnsetApp(ctx, cluster, app, opts)
				})
		},
	}
	f.register(cmd)
	return cmd
}

func newRollbackCommand() *cobra.Command {
	var f appWriteFlags
	cmd := &cobra.Command{
		Use:   "rollback APP (--cluster CLUSTER... | --selector SELECTOR)",
		Short: "Set an app on one or many clusters back to its previous version from Git history",
		Long: `Set an app on a cluster back to the version it had before its current one, found in
Git history (two rollbacks in a row return to where they started). No earlier version:
exit code 3. With --selector or several --cluster, every selected cluster goes back to
its own previous version, in one commit, all or nothing.`,
		Example: "  outpost rollback web --cluster prod-eu\n  outpost rollback web --selector env=prod",
		Args:    exactArgs(1, "APP"),
		RunE: func(cmd *cobra.Command, args []string) error {
			app := args[0]
			if err := f.check(app); err != nil {
				return err
			}
			return f.run(cmd, "rollback "+app, app, apiv1.BulkRollback, "",
				func(ctx context.Context, c *hubapi.Client, cluster string, opts hubapi.WriteOptions) (*apiv1.ChangeResult, error) {
					return c.Rollback(ctx, cluster, app, opts)
				})
		},
	}
	f.register(cmd)
	return cmd
}

func newStatusCommand() *cobra.Command {
	var f hubFlags
	cmd := &cobra.Command{
		Use:   "status [CLUSTER]",
		Short: "Show which version of which app runs where, sync phase, health and drift",
		Long: `Without CLUSTER: every app on every cluster (the hub's matrix). With CLUSTER: that
cluster's apps, and the details of their drift (field, desired → live, who, when),
errors and health.`,
		Example: "  outpost status\n  outpost status prod-eu\n  outpost status prod-eu -o yaml",
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) > 1 {
				return &UsageError{Err: fmt.Errorf("want at most one CLUSTER, got %d arguments", len(args))}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				if err := checkName("cluster", args[0]); err != nil {
					return err
				}
			}
			c, err := f.client()
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if len(args) == 0 {
				m, err := c.Matrix(cmd.Context())
				if err != nil {
					return fmt.Errorf("status: %w", err)
				}
				return write(out, f.output, m, func(w io.Writer) error { return matrixTable(w, m) })
			}
			st, err := c.ClusterStatus(cmd.Context(), args[0])
			if err != nil {
				return fmt.Errorf("status of cluster %s: %w", args[0], err)
			}
			return write(out, f.output, st, func(w io.Writer) error { return clusterStatusText(w, st) })
		},
	}
	f.register(cmd.Flags())
	return cmd
}

// driftCount formats a number of drifted objects.
func driftCount(n int) string {
	if n == 0 {
		return "-"
	}
	return fmt.Sprint(n)
}

func matrixTable(w io.Writer, m *apiv1.Matrix) error {
	if len(m.Clusters) == 0 {
		_, err := fmt.Fprintln(w, "No cluster is registered. Register one with: outpost clusters add NAME")
		return err
	}
	tw := newTable(w)
	fmt.Fprintln(tw, "CLUSTER\tAPP\tDESIRED\tVERSION\tPHASE\tHEALTH\tDRIFTED\tLAST SYNCED")
	for _, row := range m.Clusters {
		if len(row.Apps) == 0 {
			fmt.Fprintf(tw, "%s\t-\t-\t-\t-\t-\t-\t-\n", row.Cluster)
			continue
		}
		for _, app := range m.Apps {
			cell, ok := row.Apps[app]
			if !ok {
				continue
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", row.Cluster, app, orDash(cell.DesiredVersion),
				orDash(cell.Version), orDash(string(cell.Phase)), orDash(string(cell.Health)),
				driftCount(cell.Drifted), timestamp(cell.LastSyncedAt))
		}
	}
	return tw.Flush()
}

func clusterStatusText(w io.Writer, st *apiv1.ClusterStatus) error {
	c := st.Cluster
	agent := orDash(c.Agent.ID)
	if c.Agent.Version != "" {
		agent += " (" + c.Agent.Version + ")"
	}
	tw := newTable(w)
	fmt.Fprintf(tw, "Cluster:\t%s\n", c.Name)
	fmt.Fprintf(tw, "Labels:\t%s\n", orDash(formatLabels(c.Labels)))
	fmt.Fprintf(tw, "Last report:\t%s\n", timestamp(c.LastReportAt))
	fmt.Fprintf(tw, "Agent:\t%s\n", agent)
	fmt.Fprintf(tw, "Revision:\t%s\n", orDash(st.Revision))
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	if len(st.Apps) == 0 {
		_, err := fmt.Fprintln(w, "No app is desired on or reported by this cluster.")
		return err
	}
	tw = newTable(w)
	fmt.Fprintln(tw, "APP\tDESIRED\tVERSION\tPHASE\tHEALTH\tDRIFTED\tREVISION\tLAST SYNCED")
	for _, a := range st.Apps {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", a.App, orDash(a.DesiredVersion), orDash(a.Version),
			orDash(string(a.Phase)), orDash(string(a.Health.Status)), driftCount(len(a.Drift)),
			orDash(shortCommit(a.Revision)), timestamp(a.LastSyncedAt))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	return problemsText(w, st)
}

// problemsText prints the errors, bad health and drift of a cluster's apps.
func problemsText(w io.Writer, st *apiv1.ClusterStatus) error {
	var b strings.Builder
	for _, a := range st.Apps {
		if e := a.Error; e != nil {
			fmt.Fprintf(&b, "\n%s: %s failed: %s", a.App, e.Stage, e.Message)
			var where []string
			if e.File != "" {
				loc := e.File
				if e.Line > 0 {
					loc += fmt.Sprintf(":%d", e.Line)
				}
				where = append(where, loc)
			}
			if e.Object != nil {
				where = append(where, e.Object.String())
			}
			if e.Field != "" {
				where = append(where, e.Field)
			}
			if len(where) > 0 {
				fmt.Fprintf(&b, "\n    at %s", strings.Join(where, ", "))
			}
			b.WriteString("\n")
		}
		if h := a.Health; h.Status != apiv1.HealthCurrent && h.Message != "" {
			fmt.Fprintf(&b, "\n%s: health %s: %s", a.App, h.Status, h.Message)
			if h.Object != nil {
				fmt.Fprintf(&b, " (%s)", h.Object)
			}
			b.WriteString("\n")
		}
		for _, d := range a.Drift {
			fmt.Fprintf(&b, "\n%s: drift of %s", a.App, d.Object)
			if d.Deleted {
				b.WriteString(": deleted out of band")
			}
			if d.Corrected {
				b.WriteString(" (corrected)")
			}
			b.WriteString("\n")
			for _, fl := range d.Fields {
				who := orDash(fl.Manager)
				if how := strings.Trim(fl.Operation+"/"+fl.Subresource, "/"); how != "" {
					who += " (" + how + ")"
				}
				when := timestamp(fl.Time)
				if fl.TimeObserved {
					when += " (observed)"
				}
				fmt.Fprintf(&b, "    %s: %s -> %s by %s at %s\n", fl.Path,
					driftValue(fl.Desired, "(unknown)"), driftValue(fl.Live, "(removed)"), who, when)
			}
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// driftValue formats a drift value: its JSON, or absent when missing or null.
func driftValue(raw []byte, absent string) string {
	s := strings.TrimSpace(string(raw))
	if s == "" || s == "null" {
		return absent
	}
	return s
}

func newHistoryCommand() *cobra.Command {
	var f hubFlags
	var cluster, app string
	var limit int
	cmd := &cobra.Command{
		Use:   "history --cluster CLUSTER [--app APP] [--limit N]",
		Short: "Show the Git commits that changed a cluster's desired state, newest first",
		Example: "  outpost history --cluster prod-eu\n" +
			"  outpost history --cluster prod-eu --app web --limit 5",
		Args: exactArgs(0, "no arguments (use --cluster and --app)"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cluster == "" {
				return &UsageError{Err: fmt.Errorf("--cluster is required")}
			}
			if err := checkName("cluster", cluster); err != nil {
				return err
			}
			if app != "" {
				if err := checkName("app", app); err != nil {
					return err
				}
			}
			if limit < 0 || limit > apiv1.MaxHistoryLimit {
				return &UsageError{Err: fmt.Errorf("--limit %d: want 1 to %d (0: the hub's default)", limit, apiv1.MaxHistoryLimit)}
			}
			c, err := f.client()
			if err != nil {
				return err
			}
			hl, err := c.History(cmd.Context(), cluster, hubapi.HistoryQuery{App: app, Limit: limit})
			if err != nil {
				return fmt.Errorf("history of cluster %s: %w", cluster, err)
			}
			return write(cmd.OutOrStdout(), f.output, hl, func(w io.Writer) error { return historyTable(w, hl, app != "") })
		},
	}
	f.register(cmd.Flags())
	cmd.Flags().StringVarP(&cluster, "cluster", "c", "", "the cluster (required)")
	cmd.Flags().StringVar(&app, "app", "", "only the commits that changed this app on the cluster")
	cmd.Flags().IntVar(&limit, "limit", 0, "at most this many commits (default: the hub's, 50)")
	return cmd
}

func historyTable(w io.Writer, hl *apiv1.HistoryList, withChange bool) error {
	if len(hl.Entries) == 0 {
		_, err := fmt.Fprintln(w, "No commit changed this desired state yet.")
		return err
	}
	tw := newTable(w)
	if withChange {
		fmt.Fprintln(tw, "COMMIT\tTIME\tAUTHOR\tCHANGE\tMESSAGE")
	} else {
		fmt.Fprintln(tw, "COMMIT\tTIME\tAUTHOR\tMESSAGE")
	}
	for _, e := range hl.Entries {
		author := e.Author
		if e.Email != "" {
			author += " <" + e.Email + ">"
		}
		msg, _, _ := strings.Cut(e.Message, "\n")
		if withChange {
			change := orDash(e.Before) + " -> " + orDash(e.After)
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", shortCommit(e.Commit), timestamp(e.Time), author, change, msg)
		} else {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", shortCommit(e.Commit), timestamp(e.Time), author, msg)
		}
	}
	return tw.Flush()
}
