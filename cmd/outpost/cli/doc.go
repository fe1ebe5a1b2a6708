// Package cli is the command tree of the outpost binary (cobra): the hub and agent
// servers, the CLI verbs that talk to the hub, and developer tools such as
// `outpost dev cluster`. Commands parse and validate flags, then call Run functions of
// the hub, agent, demo and localk8s packages; they hold no logic of their own. It is the
// binary's composition root: the process globals (klog's logger) are set here, never
// in the packages it calls.
package cli
