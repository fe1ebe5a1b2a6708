// Package faultproxy holds the proxies of the fault-injection suite (e2e, make
// chaos): Kube, an HTTP proxy in front of a kube-apiserver that records every request
// of one client and can act at a chosen request (pause or kill the client in the
// middle of an apply), and TCP, a proxy between two processes that drops, delays,
// holds half-open or resets their connections on demand.
//
// Both are test helpers: they listen on loopback only and keep no state beyond the
// process.
package faultproxy
