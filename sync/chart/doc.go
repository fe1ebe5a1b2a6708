// Package chart reads Helm charts safely for sync/render: from a directory of the
// repository (every read confined to the repository root) or from a chart archive
// (.tgz, no links, no path leaving the chart, bounded sizes), and fetches remote
// charts from HTTP chart repositories and OCI registries into a disk cache.
package chart
