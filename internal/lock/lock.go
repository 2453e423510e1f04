// Package lock keeps two runs from changing one cluster at once, as
// Terraform's state lock does: a run that will change the cluster (apply,
// plan -out) takes a lock on this machine (Local) and one on every node
// (Node), and a second run is refused, naming the holder, or waits for it
// with a timeout (Retry).
//
// A node lock is flock(1) on a root-only file, held by a command that lives
// as long as the run's SSH session: when the run ends, dies or loses its
// connection, sshd closes the command's input and the lock is released.
package lock

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"
)

// HeldError is a refusal: another run holds the lock.
type HeldError struct {
	Where  string // "node node1" or "this machine (PATH)"
	Holder Holder
}

func (e *HeldError) Error() string {
	return fmt.Sprintf("the lock on %s is held by %s", e.Where, e.Holder)
}

// Retry calls try until it succeeds or fails with an error other than a
// *HeldError, or until ctx ends or the deadline passes (a zero deadline:
// one try), as Terraform's -lock-timeout. waiting, when not nil, is told
// of the first refusal so the user knows why the run waits.
func Retry(ctx context.Context, deadline time.Time, try func() error, waiting func(*HeldError)) error {
	wait := 250 * time.Millisecond
	told := false
	for {
		err := try()
		var he *HeldError
		if !errors.As(err, &he) {
			return err
		}
		left := time.Until(deadline)
		if left <= 0 {
			return err
		}
		if waiting != nil && !told {
			waiting(he)
			told = true
		}
		// Jitter keeps two waiting runs from trying in step.
		d := min(wait/2+rand.N(wait), left)
		select {
		case <-time.After(d):
		case <-ctx.Done():
			return fmt.Errorf("%w (stopped waiting: %v)", err, context.Cause(ctx))
		}
		wait = min(2*wait, 2*time.Second)
	}
}
