package cli

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	apiv1 "github.com/outpost-gitops/outpost/api/v1"
	"github.com/outpost-gitops/outpost/internal/hubapi"
)

func newClustersCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "clusters",
		Short: "List, register and remove the clusters of the hub",
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return &UsageError{Err: fmt.Errorf("unknown command %q for %q: want list, add, rotate-token or remove", args[0], cmd.CommandPath())}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(newClustersListCommand(), newClustersAddCommand(), newClustersRotateTokenCommand(), newClustersRemoveCommand())
	return cmd
}

func newClustersListCommand() *cobra.Command {
	var f hubFlags
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List the registered clusters with a summary of their apps",
		Example: "  outpost clusters list\n  outpost clusters list -o json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := f.client()
			if err != nil {
				return err
			}
			list, err := c.ListClusters(cmd.Context())
			if err != nil {
				return fmt.Errorf("list clusters: %w", err)
			}
			return write(cmd.OutOrStdout(), f.output, list, func(w io.Writer) error { return clusterTable(w, list) })
		},
	}
	f.register(cmd.Flags())
	return cmd
}

func clusterTable(w io.Writer, list *apiv1.ClusterList) error {
	if len(list.Clusters) == 0 {
		_, err := fmt.Fprintln(w, "No cluster is registered. Register one with: outpost clusters add NAME")
		return err
	}
	tw := newTable(w)
	fmt.Fprintln(tw, "NAME\tLABELS\tAPPS\tSYNCED\tSYNCING\tFAILED\tUNHEALTHY\tDRIFTED\tLAST REPORT\tAGENT")
	for _, c := range list.Clusters {
		s := c.Summary
		agent := c.Agent.ID
		if agent != "" && c.Agent.Version != "" {
			agent += " (" + c.Agent.Version + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%s\t%s\n", c.Name, orDash(formatLabels(c.Labels)),
			s.Apps, s.Synced, s.Syncing, s.Failed, s.Unhealthy, s.Drifted, timestamp(c.LastReportAt), orDash(agent))
	}
	return tw.Flush()
}

func newClustersAddCommand() *cobra.Command {
	var f hubFlags
	var labels []string
	cmd := &cobra.Command{
		Use:   "add NAME",
		Short: "Register a cluster and print its agent token (shown only this once)",
		Long: `Register a cluster: the hub creates clusters/NAME/ in Git (a commit by you) and an
agent token for the cluster, printed here. The hub keeps only the token's hash, so this
is the only time it is shown: store it where the cluster's agent reads it (--token-file).`,
		Example: "  outpost clusters add prod-us --label env=prod --label region=us\n" +
			"  outpost clusters add prod-us -o json | jq -r .token > prod-us.token",
		Args: exactArgs(1, "NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			req := apiv1.RegisterClusterRequest{Name: args[0]}
			var err error
			if req.Labels, err = parseLabels(labels); err != nil {
				return err
			}
			if err := req.Validate(); err != nil {
				return &UsageError{Err: err}
			}
			c, err := f.client()
			if err != nil {
				return err
			}
			resp, err := c.RegisterCluster(cmd.Context(), req)
			if err != nil {
				return fmt.Errorf("register cluster %s: %w", req.Name, err)
			}
			if f.output != "table" {
				fmt.Fprintf(cmd.ErrOrStderr(), "The agent token of cluster %s is shown only this once: the hub cannot show it again.\n", req.Name)
			}
			return write(cmd.OutOrStdout(), f.output, resp, func(w io.Writer) error { return registeredText(w, resp) })
		},
	}
	f.register(cmd.Flags())
	cmd.Flags().StringArrayVarP(&labels, "label", "l", nil, "label of the cluster as key=value (repeatable)")
	return cmd
}

func registeredText(w io.Writer, resp *apiv1.RegisterClusterResponse) error {
	c := resp.Cluster
	labels := ""
	if len(c.Labels) > 0 {
		labels = " (" + formatLabels(c.Labels) + ")"
	}
	_, err := fmt.Fprintf(w, `Registered cluster %s%s.

Agent token of %s:

    %s

This is the only time the token is shown: the hub keeps only its hash and cannot show
it again. Store it now where the cluster's agent reads it (agent --token-file).
`, c.Name, labels, c.Name, resp.Token)
	return err
}

// parseLabels parses key=value flags.
func parseLabels(flags []string) (map[string]string, error) {
	if len(flags) == 0 {
		return nil, nil
	}
	labels := map[string]string{}
	for _, kv := range flags {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, &UsageError{Err: fmt.Errorf("--label %q: want key=value", kv)}
		}
		if _, dup := labels[k]; dup {
			return nil, &UsageError{Err: fmt.Errorf("--label %q: key %s given twice", kv, k)}
		}
		labels[k] = v
	}
	return labels, nil
}

func newClustersRotateTokenCommand() *cobra.Command {
	var f hubFlags
	var grace time.Duration
	cmd := &cobra.Command{
		Use:   "rotate-token NAME",
		Short: "Give a cluster's agent a new token (printed only this once); changes nothing in Git",
		Long: `Give a cluster's agent a new token and print it. Nothing changes in Git, so what the
cluster runs is untouched (removing and re-adding a cluster is no way to rotate a token).
With --grace the previous token keeps working that long, time to give the agent the new one.`,
		Example: "  outpost clusters rotate-token prod-us --grace 10m\n" +
			"  outpost clusters rotate-token prod-us -o json | jq -r .token > prod-us.token",
		Args: exactArgs(1, "NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			if err := checkName("cluster", name); err != nil {
				return err
			}
			if grace < 0 || grace > apiv1.MaxTokenGrace*time.Second || grace%time.Second != 0 {
				return &UsageError{Err: fmt.Errorf("--grace %s: want whole seconds from 0 to 24h", grace)}
			}
			c, err := f.client()
			if err != nil {
				return err
			}
			resp, err := c.RotateToken(cmd.Context(), name, grace)
			if err != nil {
				return fmt.Errorf("rotate the token of cluster %s: %w", name, err)
			}
			if f.output != "table" {
				fmt.Fprintf(cmd.ErrOrStderr(), "The new agent token of cluster %s is shown only this once: the hub cannot show it again.\n", name)
			}
			return write(cmd.OutOrStdout(), f.output, resp, func(w io.Writer) error {
				previous := "The previous token stopped working."
				if resp.PreviousValidUntil != nil {
					previous = "The previous token works until " + resp.PreviousValidUntil.UTC().Format(time.RFC3339) + "."
				}
				_, err := fmt.Fprintf(w, `New agent token of %s:

    %s

%s This is the only time the token is shown: store it now where the
cluster's agent reads it (agent --token-file).
`, name, resp.Token, previous)
				return err
			})
		},
	}
	f.register(cmd.Flags())
	cmd.Flags().DurationVar(&grace, "grace", 0, "how long the previous token keeps working (0 to 24h)")
	return cmd
}

func newClustersRemoveCommand() *cobra.Command {
	var f hubFlags
	var ifMatch string
	cmd := &cobra.Command{
		Use:     "remove NAME",
		Aliases: []string{"rm"},
		Short:   "Remove a cluster from Git and the hub, with its token, status and events",
		Example: "  outpost clusters remove prod-us",
		Args:    exactArgs(1, "NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			if err := firstErr(checkName("cluster", name), checkIfMatch(ifMatch)); err != nil {
				return err
			}
			c, err := f.client()
			if err != nil {
				return err
			}
			if err := c.DeleteCluster(cmd.Context(), name, hubapi.WriteOptions{IfMatch: ifMatch}); err != nil {
				return fmt.Errorf("remove cluster %s: %w", name, err)
			}
			out := struct {
				Cluster string `json:"cluster"`
				Removed bool   `json:"removed"`
			}{name, true}
			return write(cmd.OutOrStdout(), f.output, out, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "Removed cluster %s.\n", name)
				return err
			})
		},
	}
	f.register(cmd.Flags())
	cmd.Flags().StringVar(&ifMatch, "if-match", "", "remove only if the desired state is still at this revision")
	return cmd
}

// exactArgs requires n positional arguments, named in the usage error.
func exactArgs(n int, names string) cobra.PositionalArgs {
	return func(_ *cobra.Command, args []string) error {
		if len(args) != n {
			return &UsageError{Err: fmt.Errorf("want %s, got %d argument(s)", names, len(args))}
		}
		return nil
	}
}

// firstErr returns the first non-nil error.
func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
