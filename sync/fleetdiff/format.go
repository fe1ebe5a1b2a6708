package fleetdiff

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/outpost-gitops/outpost/sync/plan"
)

// WriteJSON writes the result as indented JSON: the schema of Result's JSON tags,
// documented in docs/cli.md.
func WriteJSON(w io.Writer, r *Result) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// ANSI colours of the text format, as git and kubectl diff use them.
const (
	red    = "\x1b[31m"
	green  = "\x1b[32m"
	cyan   = "\x1b[36m"
	yellow = "\x1b[33m"
	bold   = "\x1b[1m"
	reset  = "\x1b[0m"
)

// WriteText writes the result for a terminal or a log: per cluster and app, each
// object with its action and its unified diff; colour is for terminals.
func WriteText(w io.Writer, r *Result, colour bool) error {
	p := &printer{w: w, colour: colour}
	for _, e := range r.Errors {
		p.line(red, "error (%s): %s", e.Side, describeError(e))
	}
	for _, c := range r.Clusters {
		p.line(bold, "cluster %s", c.Cluster)
		for _, a := range c.Apps {
			p.line(bold, "  app %s %s", a.App, versions(a))
			for _, o := range a.Objects {
				p.line(actionColour(o.Action), "    %s %s", actionWord(o.Action), o.Object)
				for _, l := range strings.SplitAfter(o.Diff, "\n") {
					if l == "" {
						continue
					}
					p.raw(diffColour(l), "      "+l)
				}
			}
		}
		writeLive(p, c.Live, "  ")
	}
	c := r.Counts
	p.line("", "%d clusters, %d apps: %d added, %d changed, %d removed (pruned)", c.Clusters, c.Apps, c.Added, c.Changed, c.Removed)
	return p.err
}

// writeLive prints the server-side dry-run of a cluster's apps.
func writeLive(p *printer, live []LiveApp, indent string) {
	if len(live) == 0 {
		return
	}
	p.line(bold, "%slive: what a sync of the head does on the running cluster (server-side dry-run)", indent)
	for _, a := range live {
		p.line(bold, "%s  app %s", indent, a.App)
		if a.Error != "" {
			p.line(red, "%s    error: %s", indent, a.Error)
		}
		for _, it := range a.Objects {
			what, col := liveWhat(it), cyan
			if it.Action == plan.ActionKeep {
				col = yellow
			}
			if it.Error != "" {
				what += ": " + it.Error
			}
			p.line(col, "%s    %s", indent, what)
			for _, f := range it.Diff {
				p.line("", "%s      %s", indent, f.String())
			}
		}
	}
}

// liveWhat says what a sync does to one object of the live preview.
func liveWhat(it plan.Item) string {
	switch it.Reason {
	case plan.ReasonDriftKept:
		what := fmt.Sprintf("kept %s (drift: report: another manager's change is left as it is)", it.Ref)
		if len(it.Diff) > 0 {
			what += ", live → head:"
		}
		return what
	case plan.ReasonDeletedKept:
		return fmt.Sprintf("kept deleted %s (drift: report: deleted outside Outpost, not created again)", it.Ref)
	case plan.ReasonCreateOnly:
		return fmt.Sprintf("kept %s (create-only: exists, never written)", it.Ref)
	}
	return fmt.Sprintf("%s %s (%s)", it.Action, it.Ref, it.Reason)
}

type printer struct {
	w      io.Writer
	colour bool
	err    error
}

func (p *printer) line(col, format string, args ...any) {
	p.raw(col, fmt.Sprintf(format, args...)+"\n")
}

func (p *printer) raw(col, s string) {
	if p.err != nil {
		return
	}
	if p.colour && col != "" {
		s = col + strings.TrimSuffix(s, "\n") + reset + "\n"
	}
	_, p.err = io.WriteString(p.w, s)
}

func actionWord(a Action) string {
	switch a {
	case Added:
		return "+ added"
	case Removed:
		return "- removed (would be pruned)"
	}
	return "~ changed"
}

func actionColour(a Action) string {
	switch a {
	case Added:
		return green
	case Removed:
		return red
	}
	return cyan
}

// LineKind says what a line of a unified diff is.
type LineKind string

// The kinds of unified-diff lines.
const (
	LineFile    LineKind = "file"    // the --- and +++ headers
	LineAdded   LineKind = "add"     // a line the head adds
	LineRemoved LineKind = "del"     // a line the head removes
	LineHunk    LineKind = "hunk"    // an @@ hunk header
	LineContext LineKind = "context" // an unchanged line
)

// KindOf classifies a line of ObjectDiff.Diff, for whoever colours it (the text
// format here, the dashboard's commit page).
func KindOf(l string) LineKind {
	switch {
	case strings.HasPrefix(l, "+++"), strings.HasPrefix(l, "---"):
		return LineFile
	case strings.HasPrefix(l, "+"):
		return LineAdded
	case strings.HasPrefix(l, "-"):
		return LineRemoved
	case strings.HasPrefix(l, "@@"):
		return LineHunk
	}
	return LineContext
}

// lineColours are the text format's ANSI colours per line kind.
var lineColours = map[LineKind]string{LineFile: bold, LineAdded: green, LineRemoved: red, LineHunk: cyan}

func diffColour(l string) string { return lineColours[KindOf(l)] }

func versions(a AppDiff) string {
	switch {
	case a.BaseVersion == "":
		return "(new on this cluster, " + a.HeadVersion + ")"
	case a.HeadVersion == "":
		return "(removed from this cluster, was " + a.BaseVersion + ")"
	case a.BaseVersion != a.HeadVersion:
		return "(" + a.BaseVersion + " → " + a.HeadVersion + ")"
	}
	return "(" + a.HeadVersion + ")"
}

func describeError(e Error) string {
	var b strings.Builder
	b.WriteString("cluster " + e.Cluster)
	if e.App != "" {
		b.WriteString(", app " + e.App)
	}
	if e.File != "" {
		b.WriteString(", " + e.File)
		if e.Line > 0 {
			fmt.Fprintf(&b, ":%d", e.Line)
		}
	}
	b.WriteString(": " + e.Message)
	return b.String()
}

// MaxMarkdown is the most characters WriteMarkdown writes: a GitHub comment holds
// 65,536.
const MaxMarkdown = 65000

// WriteMarkdown writes the result as a pull-request comment: a summary table, the
// errors, then one collapsible section per group of clusters whose diffs are
// identical (removals and CRD changes listed first in each), truncated with a note
// to stay under MaxMarkdown characters.
func WriteMarkdown(w io.Writer, r *Result) error {
	var b strings.Builder
	c := r.Counts
	fmt.Fprintf(&b, "### Outpost diff: %s → %s\n\n", r.Base, r.Head)
	if len(r.Clusters) == 0 && len(r.Errors) == 0 {
		b.WriteString("No cluster changes.\n")
		_, err := io.WriteString(w, b.String())
		return err
	}
	fmt.Fprintf(&b, "**%d clusters, %d apps: %d added, %d changed, %d removed (pruned)**\n\n", c.Clusters, c.Apps, c.Added, c.Changed, c.Removed)
	if len(r.Errors) > 0 {
		b.WriteString("#### Errors\n\n")
		for _, e := range r.Errors {
			fmt.Fprintf(&b, "- **%s**: %s\n", e.Side, mdEscape(describeError(e)))
		}
		b.WriteString("\n")
	}
	groups := group(r.Clusters)
	if len(groups) > 0 {
		b.WriteString("| Clusters | App | Added | Changed | Removed |\n|---|---|---:|---:|---:|\n")
		for _, g := range groups {
			for _, a := range g.diff.Apps {
				ad, ch, rm := appCounts(a)
				fmt.Fprintf(&b, "| %s | %s %s | %d | %d | %d |\n", mdEscape(strings.Join(g.clusters, ", ")), a.App, mdEscape(versions(a)), ad, ch, rm)
			}
		}
		b.WriteString("\n")
	}
	head := b.String()
	var body strings.Builder
	for _, g := range groups {
		fmt.Fprintf(&body, "<details><summary>%s</summary>\n\n", mdEscape(strings.Join(g.clusters, ", ")))
		for _, a := range g.diff.Apps {
			fmt.Fprintf(&body, "**%s** %s\n\n", a.App, mdEscape(versions(a)))
			for _, o := range a.Objects {
				fmt.Fprintf(&body, "%s `%s`\n\n```diff\n%s```\n\n", actionWord(o.Action), o.Object, strings.ReplaceAll(o.Diff, "```", "` ` `"))
			}
		}
		if len(g.diff.Live) > 0 {
			var lb strings.Builder
			writeLive(&printer{w: &lb}, g.diff.Live, "")
			fmt.Fprintf(&body, "```text\n%s```\n\n", strings.ReplaceAll(lb.String(), "```", "` ` `"))
		}
		body.WriteString("</details>\n\n")
	}
	out := head + body.String()
	if len(out) > MaxMarkdown {
		const note = "\n\n…truncated: the diff is longer than a comment holds; run `outpost diff` locally or use `-o json` for all of it.\n"
		cut := MaxMarkdown - len(note) - len("```\n</details>\n")
		out = out[:cut]
		if strings.Count(out, "```")%2 == 1 {
			out += "\n```"
		}
		if strings.Count(out, "<details>") > strings.Count(out, "</details>") {
			out += "\n</details>"
		}
		out += note
	}
	_, err := io.WriteString(w, out)
	return err
}

type clusterGroup struct {
	clusters []string
	diff     ClusterDiff
}

// group merges clusters whose app diffs are identical, keeping the first cluster's
// order.
func group(cs []ClusterDiff) []clusterGroup {
	var out []clusterGroup
	at := map[[32]byte]int{}
	for _, c := range cs {
		b, _ := json.Marshal(struct {
			Apps []AppDiff
			Live []LiveApp
		}{c.Apps, c.Live})
		k := sha256.Sum256(b)
		if i, ok := at[k]; ok {
			out[i].clusters = append(out[i].clusters, c.Cluster)
			continue
		}
		at[k] = len(out)
		out = append(out, clusterGroup{clusters: []string{c.Cluster}, diff: c})
	}
	return out
}

func appCounts(a AppDiff) (added, changed, removed int) {
	for _, o := range a.Objects {
		switch o.Action {
		case Added:
			added++
		case Removed:
			removed++
		default:
			changed++
		}
	}
	return
}

var mdReplacer = strings.NewReplacer("|", `\|`, "<", "&lt;", ">", "&gt;")

func mdEscape(s string) string { return mdReplacer.Replace(s) }
