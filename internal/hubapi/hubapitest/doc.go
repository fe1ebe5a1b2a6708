// Package hubapitest is an in-memory fake of the Outpost hub's REST API for tests of
// its clients (the CLI, hubapi) and of views of its data (the dashboard): the routes
// of docs/api.md for people and scripts, with the same bodies, status codes and
// errors, but desired state kept in maps instead of Git. It is not the hub: there is
// no Git, no SQLite, no long-poll, and events are derived naively from reports.
//
// Hub serves HTTP (Handler) and also answers in-process (Matrix, ClusterStatus,
// Events), so a test can seed status with Report and look at it either way. Every
// request is recorded (Requests), so a test can check what a client sent.
package hubapitest
