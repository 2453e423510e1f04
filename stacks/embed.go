// Package stacks ships the CUE stacks that render a validated cluster into
// per-node resources, one CUE package per product, embedded in the binary
// and overlaid under cue.mod/pkg/hastack.dev/stacks/ of the user's folder.
package stacks

import "embed"

// ImportPrefix is the CUE import path that FS's top-level folders live under.
const ImportPrefix = "hastack.dev/stacks"

// FS holds hsts/*.cue (package hsts), lb/*.cue (package lb: load balancers with a VIP, used by hsts and shares), massstore/*.cue (package massstore) and shares/*.cue (package shares).
//
//go:embed hsts/*.cue lb/*.cue massstore/*.cue shares/*.cue
var FS embed.FS
