package v1

import "time"

// Limits the hub enforces on what it receives. The agent splits or trims what it
// sends to stay within them (e.g. Changes beyond MaxChanges go to ChangesOmitted).
const (
	// MaxReportBytes is the largest StatusReport body, in bytes.
	MaxReportBytes = 4 << 20
	// MaxRequestBytes is the largest body of any other request, in bytes.
	MaxRequestBytes = 64 << 10
	// MaxApps is the largest number of apps in one report.
	MaxApps = 1000
	// MaxDriftEntries is the largest number of drifted objects in one report.
	MaxDriftEntries = 1000
	// MaxDriftFields is the largest number of fields of one Drift.
	MaxDriftFields = 100
	// MaxChanges is the longest change-set summary of one app.
	MaxChanges = 50
	// MaxValueBytes is the largest JSON value of a DriftField's Desired or Live.
	MaxValueBytes = 4096
	// MaxMessageLen is the longest free-form message (error, health), in bytes.
	MaxMessageLen = 4096
	// MaxPathLen is the longest field or file path, in bytes.
	MaxPathLen = 1024
	// MaxShortLen is the longest short identifier (agent id, pod, manager), in bytes.
	MaxShortLen = 253
	// MaxVersionLen is the longest app version, in bytes (as in the repository contract).
	MaxVersionLen = 128
	// MaxLabels is the largest number of labels of a cluster.
	MaxLabels = 64
	// MaxCount bounds every object count of an AppStatus.
	MaxCount = 1_000_000
	// MaxDuration bounds every duration of an AppStatus.
	MaxDuration = 24 * time.Hour
	// MaxClockSkew is how far after a report's SentAt the agent's other times in it may lie.
	MaxClockSkew = time.Minute
	// MaxHistoryLimit is the largest limit of a history or events query.
	MaxHistoryLimit = 1000
)

// The range of times accepted as sane: 2000-01-01 to 2200-01-01 UTC, in Unix seconds.
const (
	minTimeUnix = 946684800
	maxTimeUnix = 7258118400
)
