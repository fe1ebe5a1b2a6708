// Package ociimage assembles container images without a container engine: one layer of
// files written as a tar with fixed ownership, modes and times, and an image config
// (user, entrypoint, labels), with go-containerregistry. The testbed's real nodes
// import them into containerd: the Outpost image (the content of the repository's
// Dockerfile, see Outpost) and the pause image of the pod sandboxes (see Pause).
package ociimage
