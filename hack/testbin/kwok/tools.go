//go:build tools

// Package tools pins kwok for `make testbin`.
package tools

import _ "sigs.k8s.io/kwok/cmd/kwok"
