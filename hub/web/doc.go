// Package web is the hub's dashboard: server-rendered HTML pages of what the hub
// knows, for operators.
//
// # Pages
//
//   - / — the overview: the cluster × app matrix (per cell the reported version, the
//     desired version when it differs, the sync phase, the health and the number of
//     drifted objects), counts over the fleet, the details of what needs attention
//     (drifted fields with desired → live values, the field manager that changed them
//     and when; sync errors with stage, file, object and field; unhealthy apps) and the
//     recent events.
//   - /clusters/{name} — one cluster: its labels, agent and last report, every app with
//     its versions, phase, health, revision, last sync and object counts, the details of
//     its drift and errors, and its recent events.
//   - /clusters/{name}/history and /commits/{rev} — a cluster's commits and a commit's
//     rendered per-cluster diff, when the Source is a HistorySource.
//   - /rollouts and /rollouts/{id} — the rollout runs, newest first, and one run: its
//     state and reason, the wave × cluster grid (per wave its soak, maxFailures,
//     approval and times; per cluster its phase, the version before, the last report,
//     the soak left, counted down by the script from the cell's data-soak-end, and
//     any message) and its commits; when the Source is a RolloutSource. The overview
//     then marks the matrix cells an active run holds.
//   - /events/stream — a Server-Sent Events stream telling an open page that its data
//     changed (see Live refresh).
//   - /static/ — the stylesheet, the script and the icon, embedded in the binary.
//
// Everything is rendered with html/template (so every value is escaped) from embedded
// templates; nothing is loaded from another origin. Every answer carries a
// Content-Security-Policy that allows scripts, styles and connections from the page's
// own origin only (no inline script or style), and X-Content-Type-Options: nosniff.
// The pages are read-only: they change nothing at the hub.
//
// # Data
//
// The dashboard reads through Source, a three-method interface the hub implements over
// its status store and Git: the Matrix, a cluster's ClusterStatus and the recent
// Events, all as api/v1 wire types. A Source may also be a HistorySource (history and
// commit pages) or a RolloutSource (rollout pages); the hub's public dashboard gets a
// Source that is neither. The package knows nothing else of the hub.
//
// # Live refresh
//
// Each page carries a fingerprint of its data: for the overview, a hash of the Matrix
// and the recent events (and the runs holding cells); for a cluster page, of its
// ClusterStatus (without the times that every heartbeat moves) and its recent events;
// for a rollout page (stream ?rollout=ID), of the run without its generation, update
// time and report times; for the list of runs (?rollouts=all), of the rows it shows. A drift or error that changes
// shows in the events, so the overview's drift details are covered too. The page's
// script opens /events/stream with that fingerprint; the stream polls the Source
// every Options.PollInterval (1 s) and sends a "changed" event, whose id and data are
// the new fingerprint, only when it differs. The script then fetches the page again
// and swaps its main content in place. EventSource reconnects by itself and sends the
// last id back (Last-Event-ID), so nothing is missed across reconnects; a stream ends
// after Options.StreamMaxAge to free server resources and is simply reopened. Where
// SSE is unavailable (no EventSource, or the stream is refused), the script polls the
// page every Options.FallbackPoll instead. Without JavaScript the pages are plain,
// complete documents.
package web
