package sshconn

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"

	"hastack.dev/hastack/internal/host"
)

// ShellQuote quotes s as one word for a POSIX shell.
func ShellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// commandLine is what the server's login shell gets: always /bin/sh (the
// login shell may be anything), under "sudo -n" when not root so a missing
// sudo rule fails at once instead of waiting for a password.
func (c *Conn) commandLine(cmd string) string {
	line := "/bin/sh -c " + ShellQuote(cmd)
	if c.sudo {
		line = "sudo -n " + line
	}
	return line
}

// acquire takes a session slot, or fails when ctx ends first.
func (c *Conn) acquire(ctx context.Context) error {
	select {
	case c.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%s: %w", c.name, context.Cause(ctx))
	case <-c.done:
		return fmt.Errorf("%s: connection closed", c.name)
	}
}

func (c *Conn) release() { <-c.sem }

// newSession opens a session channel. sshd frees a closed session a moment
// after we see it closed, so under load it may briefly refuse a new one
// ("open failed") although we stay below its MaxSessions: retry a little.
func (c *Conn) newSession(ctx context.Context) (*ssh.Session, error) {
	wait := time.Millisecond
	for try := 0; ; try++ {
		s, err := c.client.NewSession()
		var oce *ssh.OpenChannelError
		if err == nil || !errors.As(err, &oce) || oce.Reason != ssh.ConnectionFailed || try == 20 {
			return s, err
		}
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return nil, context.Cause(ctx)
		}
		wait = min(2*wait, 100*time.Millisecond)
	}
}

// Run runs cmd with root rights in one exec session. A non-zero exit is a
// Result, not an error; errors mean the command could not run or finish
// (connection lost, ctx ended). Errors never quote cmd or stdin.
func (c *Conn) Run(ctx context.Context, cmd string, stdin io.Reader) (host.Result, error) {
	if err := c.acquire(ctx); err != nil {
		return host.Result{}, err
	}
	defer c.release()
	s, err := c.newSession(ctx)
	if err != nil {
		return host.Result{}, fmt.Errorf("%s: open SSH session: %w", c.name, err)
	}
	defer s.Close()
	var out, errb bytes.Buffer
	s.Stdin, s.Stdout, s.Stderr = stdin, &out, &errb
	done := make(chan error, 1)
	go func() { done <- s.Run(c.commandLine(cmd)) }()
	select {
	case err = <-done:
	case <-ctx.Done():
		// Closing the channel makes sshd hang up on the command. We do not
		// wait: a blocking stdin reader would keep Wait from returning.
		s.Signal(ssh.SIGKILL)
		s.Close()
		return host.Result{}, fmt.Errorf("%s: command interrupted: %w", c.name, context.Cause(ctx))
	}
	res := host.Result{Stdout: out.Bytes(), Stderr: errb.Bytes()}
	var ee *ssh.ExitError
	var em *ssh.ExitMissingError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		res.Code = ee.ExitStatus() // 128+n when killed by signal n
	case errors.As(err, &em):
		return res, fmt.Errorf("%s: command ended without an exit status (connection lost?)", c.name)
	default:
		return res, fmt.Errorf("%s: run command: %w", c.name, err)
	}
	return res, nil
}
