//go:build tools

// Package tools pins etcd for `make testbin`.
package tools

import _ "go.etcd.io/etcd/server/v3"
