package engine

import "context"

// StartFunc is told that apply starts a change on a node, before it runs:
// the command line shows what is in progress while a long step (a
// restart, a wait) runs. Events (apply's report) say when each change is
// done; this only says when it starts.
type StartFunc func(node string, c *ResourceChange)

type startKey struct{}

// WithStart returns ctx carrying f for Apply. Apply calls f from the
// nodes' goroutines, at the same time for the nodes of a batch.
func WithStart(ctx context.Context, f StartFunc) context.Context {
	return context.WithValue(ctx, startKey{}, f)
}

// starting tells ctx's StartFunc, if any, that c starts on node.
func starting(ctx context.Context, node string, c *ResourceChange) {
	if f, ok := ctx.Value(startKey{}).(StartFunc); ok && f != nil {
		f(node, c)
	}
}
