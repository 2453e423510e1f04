package cli

// The drivers (and their checks) and the product modules this hastack
// ships register themselves when imported; here so that every program that
// runs the CLI (the binary, tests that re-run themselves as hastack) has
// them.
import (
	_ "hastack.dev/hastack/modules/aspera"
	_ "hastack.dev/hastack/modules/redis"
	_ "hastack.dev/hastack/stacks/hsts"
	_ "hastack.dev/hastack/stacks/hsts/check"
	_ "hastack.dev/hastack/stacks/massstore"
	_ "hastack.dev/hastack/stacks/shares"
)
