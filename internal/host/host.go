// Package host defines how hastack talks to one node: run shell commands and
// write files atomically. The SSH connector (internal/sshconn) and the local
// connector (this package) implement it.
package host

import (
	"context"
	"io"
	"io/fs"
	"net"
)

// Result is what a command left behind. A non-zero exit is not an error.
type Result struct {
	Stdout []byte
	Stderr []byte
	Code   int
}

// File is one atomic write.
type File struct {
	Path string
	Data []byte
	Mode fs.FileMode // permission bits
	UID  int         // numeric owner; -1 keeps the default
	GID  int         // numeric group; -1 keeps the default
}

// Host is one node. Implementations are safe for concurrent use.
type Host interface {
	// Name is the node's name from the config, used in every message.
	Name() string
	// Run runs a /bin/sh command line with root rights (sudo is added by the
	// connector when the login user is not root). stdin may be nil.
	Run(ctx context.Context, cmd string, stdin io.Reader) (Result, error)
	// WriteFile replaces f.Path atomically: a temporary file in the same
	// directory, synced, owned and moded, then renamed over the target. Once
	// started, a write finishes even if ctx is cancelled, so an interrupt never
	// leaves a half-written file. The parent directory must exist.
	WriteFile(ctx context.Context, f File) error
	Close() error
}

// Starter is a Host that can start a long-lived command: one that keeps
// running after Start returns, reads its stdin until it is closed and
// streams its output. The node lock is one (internal/lock). Start's ctx
// bounds starting only: the command outlives it, so a Ctrl-C that lets a
// change finish does not end it.
type Starter interface {
	Start(ctx context.Context, cmd string) (Process, error)
}

// Process is a command started by Starter.Start.
type Process interface {
	// Stdin is the command's standard input; closing it tells the
	// command its input has ended.
	Stdin() io.WriteCloser
	// Stdout is the command's standard output as it comes.
	Stdout() io.Reader
	// Wait waits for the command to end. Result.Stdout is empty (it went
	// to Stdout); Result.Stderr holds the first few KiB of its stderr.
	Wait() (Result, error)
	// Close ends the command now; its resources are freed.
	Close() error
}

// Dialer is a Host that opens TCP connections from the node itself (SSH's
// direct-tcpip on the node's connection; a plain dial for the local host).
// Facts use it to ask Redis and Sentinel without starting a program there.
type Dialer interface {
	DialTCP(ctx context.Context, addr string) (net.Conn, error)
}
