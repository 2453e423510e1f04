package modules

import (
	"context"

	"hastack.dev/hastack/internal/host"
)

// joinPart lets consecutive changes of one node run as one command: the
// start phase of a new node starts its services with one systemctl instead
// of an exec each (each exec is an SSH session, a shell and a wrapper).
// Changes join only with the same key; run does the work of all the parts.
type joinPart struct {
	key  string
	part any
	run  func(ctx context.Context, h host.Host, parts []any) error
}

// Joins says whether b, the change after a on the same node, can run in
// one command with a.
func Joins(a, b *Change) bool {
	return a.join != nil && b.join != nil && a.join.key == b.join.key
}

// ApplyJoined applies cs, consecutive changes of one node that join
// (Joins), with one command. When it fails the caller applies each on its
// own, which says which one failed: a joinable change must be safe to
// apply again after a part of its joined run did its work.
func ApplyJoined(ctx context.Context, h host.Host, cs []*Change) error {
	parts := make([]any, len(cs))
	for i, c := range cs {
		parts[i] = c.join.part
	}
	return cs[0].join.run(ctx, h, parts)
}
