// Package faultproxy holds the proxies of the fault-injection suite (e2e, make
// chaos): HTTP, a proxy in front of a kube-apiserver, a Git server or the hub that
// records every request of one client and can act at a chosen request (pause or
// kill the client in the middle of an apply, the server in the middle of a push),
// and TCP, a proxy between two processes that drops, delays, holds half-open or
// resets their connections on demand.
//
// Both are test helpers: they listen on loopback only and keep no state beyond the
// process.
package faultproxy
