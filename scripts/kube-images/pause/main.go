// pause: the infrastructure ("sandbox") container of every Kubernetes pod, sealant's own build
// standing in for registry.k8s.io/pause (its C source is not on the Go module proxy).
//
// It does what upstream's pause.c does:
//   - sleeps until SIGTERM or SIGINT, then exits 0;
//   - reaps every child that exits when it is PID 1 of a shared PID namespace (orphans are
//     re-parented to it, and would stay zombies otherwise);
//   - `pause -v` prints its version and exits 0: kubeadm upgrade's health-check Job runs the
//     pause image with "-v" and waits for the Job to succeed.
//
// Built statically (CGO_ENABLED=0) by scripts/kube-images.sh.
package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

// version is set at build time (-ldflags "-X main.version=...").
var version = "dev"

func main() {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case "-v", "--version":
			fmt.Printf("pause (sealant) %s\n", version)
			os.Exit(0)
		default:
			fmt.Fprintf(os.Stderr, "pause: unknown argument %q (only -v)\n", os.Args[1])
			os.Exit(1)
		}
	}

	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)

	if os.Getpid() == 1 {
		children := make(chan os.Signal, 1)
		signal.Notify(children, syscall.SIGCHLD)
		go func() {
			for range children {
				reap()
			}
		}()
		reap() // children that exited before the handler was installed
	}

	<-stop
	os.Exit(0)
}

// reap collects every exited child without blocking.
func reap() {
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
		if err == syscall.EINTR {
			continue
		}
		if pid <= 0 || err != nil {
			return // no child left (ECHILD) or none has exited yet (0)
		}
	}
}
