// Package schema ships the CUE schemas users import, one CUE package per
// product (hsts today; Shares HA and MassStore later) and the public stack
// interface (stack), embedded in the binary.
//
// The loader overlays FS under cue.mod/pkg/hastack.dev/schema/ of the user's
// folder, so `import "hastack.dev/schema/hsts"` works with no registry.
package schema

import "embed"

// ImportPrefix is the CUE import path that FS's top-level folders live under.
const ImportPrefix = "hastack.dev/schema"

// FS holds hsts/*.cue (package hsts), shares/*.cue (package shares), stack/*.cue (package stack, the
// public stack interface) and root/*.cue (package root, the closed shape of
// a whole config folder).
//
//go:embed hsts/*.cue redundancy/*.cue shares/*.cue stack/*.cue root/*.cue
var FS embed.FS
