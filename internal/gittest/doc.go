// Package gittest runs a Git server for tests of the hub, the agent and the
// end-to-end suite: a bare repository in a temporary directory, served over
// Git smart HTTP on a loopback port, or on the address given to WithListenAddr (the
// e2e suite serves pods in kind clusters from the Docker network's gateway).
//
//	srv := gittest.New(t, gittest.WithToken("secret"))
//	head := srv.Commit(t, map[string]string{"clusters/prod/apps.yaml": "apps: []\n"}, "add prod", "Jane <jane@example.com>")
//	// clone or fetch srv.URL() with the token as basic-auth password or bearer token
//	srv.Stop()  // Git is down: connections refused
//	srv.Start() // back, on the same port
//
// Fetches are answered by internal/gitserve, the read-only server the hub runs for
// agents, so tests exercise what production serves. Pushes (git-receive-pack)
// are accepted by a small implementation here that updates each ref only if it
// still holds the old value the client saw, like a real Git server: two pushers
// racing get one "ok" and one "fetch first". Commit plays a person committing
// directly to the remote. Stats counts requests, for tests that check that a
// no-op costs nothing.
package gittest
