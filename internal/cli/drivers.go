package cli

// The drivers (and their checks) this hastack ships register themselves
// when imported; here so that every program that runs the CLI (the
// binary, tests that re-run themselves as hastack) has them.
import (
	_ "hastack.dev/hastack/stacks/hsts"
	_ "hastack.dev/hastack/stacks/hsts/check"
)
