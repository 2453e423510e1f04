// Command hastack is a declarative configuration engine for highly-available
// clusters, written in CUE and applied over SSH.
package main

import (
	"os"

	"hastack.dev/hastack/internal/cli"
)

func main() { os.Exit(cli.Main(os.Args[1:])) }
