package v1

// DesiredRevision answers the desired-revision long-poll
// (GET /api/v1/agent/desired?cluster=<name>&since=<revision>).
//
// The hub answers at once with Changed true when the cluster's desired state changed
// after since (or since is empty or unknown to it); otherwise it holds the request until
// a change touching the cluster is published, or for about 30 seconds, and then answers
// with Changed false. Revision is the Git revision at which the cluster's desired state
// last changed, as far as the hub knows; the agent fetches Git (at least up to it) when
// Changed is true, and passes it back as since in its next long-poll.
type DesiredRevision struct {
	// Revision is the Git revision at which the cluster's desired state last changed;
	// empty when the hub knows none yet.
	Revision string `json:"revision"`
	// Changed is true when the cluster's desired state changed after since.
	Changed bool `json:"changed"`
}

// ViewSourceTrailer starts the last line of the message of a commit the hub made for
// one cluster's view of the repository (served to agent tokens at /git/<cluster>.git);
// the source commit's hash follows it. The agent reports that source commit.
const ViewSourceTrailer = "Outpost-Source-Commit: "
