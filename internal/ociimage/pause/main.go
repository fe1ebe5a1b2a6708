// Command pause is the testbed's pod sandbox process, built from source instead of
// pulled (registry.k8s.io/pause): it holds the pod's namespaces, reaps the children it
// inherits as PID 1, and exits 0 on SIGINT or SIGTERM.
//
// With -listen it also answers every HTTP request with 200, standing in for an
// application image (nginx in examples/) where no registry can be reached.
package main

import (
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	listen := flag.String("listen", "", "also serve HTTP 200 on this address (e.g. :80)")
	flag.Parse()
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	if *listen != "" {
		go func() {
			err := http.ListenAndServe(*listen, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				fmt.Fprintln(w, "ok")
			}))
			fmt.Fprintln(os.Stderr, "pause:", err)
			os.Exit(1)
		}()
	}
	for sig := range sigs {
		if sig != syscall.SIGCHLD {
			os.Exit(0)
		}
		for {
			var ws syscall.WaitStatus
			pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
			if pid <= 0 || err != nil {
				break
			}
		}
	}
}
