package shares

import (
	"hastack.dev/hastack/stacks"
)

// embedded is the stack the driver renders with (stacks.Embedded).
var embedded = &stacks.Embedded{Pkg: "shares", Def: "#Stack"}
