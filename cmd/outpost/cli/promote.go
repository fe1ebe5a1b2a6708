package cli

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	apiv1 "github.com/outpost-gitops/outpost/api/v1"
)

// PromoteRefusedError says why promote would not copy a version: the source cluster
// does not run it healthy.
type PromoteRefusedError struct {
	// Cluster and App are the source.
	Cluster, App string
	// Reason says what is wrong.
	Reason string
}

func (e *PromoteRefusedError) Error() string {
	return fmt.Sprintf("refusing to promote %s from %s: %s", e.App, e.Cluster, e.Reason)
}

// promotable returns the version app runs healthy on the cluster of st: desired in Git
// at st.Revision, reported at that version, Synced and Current, without error.
func promotable(st *apiv1.ClusterStatus, app string) (string, error) {
	refuse := func(format string, args ...any) error {
		return &PromoteRefusedError{Cluster: st.Cluster.Name, App: app, Reason: fmt.Sprintf(format, args...)}
	}
	for _, a := range st.Apps {
		if a.App != app {
			continue
		}
		switch {
		case a.DesiredVersion == "":
			return "", refuse("it is not desired there (not in its apps.yaml at revision %s)", shortCommit(st.Revision))
		case a.ReceivedAt.IsZero() || a.Version == "":
			return "", refuse("its agent never reported it")
		case a.Version != a.DesiredVersion:
			return "", refuse("it runs %s, but Git asks for %s: not rolled out yet", a.Version, a.DesiredVersion)
		case a.Phase != apiv1.PhaseSynced:
			return "", refuse("it is %s at %s, not Synced", orDash(string(a.Phase)), a.Version)
		case a.Health.Status != apiv1.HealthCurrent:
			return "", refuse("its health is %s at %s, not Current", orDash(string(a.Health.Status)), a.Version)
		case a.Error != nil:
			return "", refuse("its last sync failed: %s", a.Error.Message)
		}
		return a.DesiredVersion, nil
	}
	return "", refuse("the cluster neither desires nor reports it")
}

func newPromoteCommand() *cobra.Command {
	var f hubFlags
	var from, to, ifMatch string
	var dryRun, vars bool
	cmd := &cobra.Command{
		Use:   "promote APP --from CLUSTER --to SELECTOR [--vars]",
		Short: "Copy the version an app runs healthy on one cluster to the clusters a selector matches (one commit)",
		Long: `Read the app's status on the --from cluster from the hub and, only when it runs the
version Git asks for there, Synced and with health Current, set that version on every
cluster whose cluster.yaml labels match --to (a Kubernetes label selector), in one
commit, all or nothing. Otherwise nothing is written and the command exits with code 1,
saying why. The write is guarded by the revision the status was read at (or
--if-match): if the selected clusters changed since, exit code 4. With --vars the app's
vars on the source cluster are copied too, replacing the targets' vars.`,
		Example: "  outpost promote web --from staging --to env=prod --dry-run\n" +
			"  outpost promote web --from prod-canary --to 'env=prod,!canary'",
		Args: exactArgs(1, "APP"),
		RunE: func(cmd *cobra.Command, args []string) error {
			app := args[0]
			if from == "" || to == "" {
				return &UsageError{Err: fmt.Errorf("--from and --to are required")}
			}
			if len(to) > apiv1.MaxSelectorLen {
				return &UsageError{Err: fmt.Errorf("--to: %d bytes, more than the limit of %d", len(to), apiv1.MaxSelectorLen)}
			}
			if err := firstErr(checkName("app", app), checkName("cluster", from), checkIfMatch(ifMatch)); err != nil {
				return err
			}
			c, err := f.client()
			if err != nil {
				return err
			}
			st, err := c.ClusterStatus(cmd.Context(), from)
			if err != nil {
				return fmt.Errorf("status of cluster %s: %w", from, err)
			}
			version, err := promotable(st, app)
			if err != nil {
				return err
			}
			rev := strings.Trim(ifMatch, `"`)
			if rev == "" {
				rev = st.Revision
			}
			req := apiv1.BulkRequest{Action: apiv1.BulkSet, Version: version, Selector: to, DryRun: dryRun, IfMatch: rev}
			if vars {
				req.VarsFrom = from
			}
			return runBulk(cmd, c, f.output, "promote "+app+"="+version+" from "+from, app, req, false)
		},
	}
	f.register(cmd.Flags())
	cmd.Flags().StringVar(&from, "from", "", "the cluster whose healthy version is copied (required)")
	cmd.Flags().StringVar(&to, "to", "", "label selector of the clusters to set it on (required)")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "show what would change on each cluster; commit nothing")
	cmd.Flags().BoolVar(&vars, "vars", false, "also copy the app's vars on the source cluster (replacing the targets' vars)")
	cmd.Flags().StringVar(&ifMatch, "if-match", "",
		"the revision the decision is based on (default: the revision the source's status was read at)")
	return cmd
}
