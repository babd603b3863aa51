// The etcd server, built from its Go module. etcd's own repository keeps this
// same two-line main at its root; we carry a copy so that `go build` can work
// from the module proxy alone (no git clone, no download site).
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
