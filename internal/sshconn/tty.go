package sshconn

import (
	"context"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// readPassphrase asks on the controlling terminal (/dev/tty, as ssh does:
// stdin and stdout may be pipes) with echo off. It returns errNoTerminal
// when there is none, and ctx's error (echo restored) on Ctrl-C.
func readPassphrase(ctx context.Context, prompt string) ([]byte, error) {
	tty, err := os.OpenFile("/dev/tty", os.O_RDWR, 0)
	if err != nil {
		return nil, errNoTerminal
	}
	defer tty.Close()
	fd := int(tty.Fd())
	old, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return nil, errNoTerminal
	}
	noEcho := *old
	noEcho.Lflag &^= unix.ECHO
	noEcho.Lflag |= unix.ICANON | unix.ISIG
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, &noEcho); err != nil {
		return nil, errNoTerminal
	}
	defer unix.IoctlSetTermios(fd, unix.TCSETS, old)
	fmt.Fprint(tty, prompt)
	defer fmt.Fprintln(tty)

	type result struct {
		line []byte
		err  error
	}
	got := make(chan result, 1)
	go func() {
		buf := make([]byte, 1024)
		n, err := tty.Read(buf) // canonical mode: one line
		got <- result{passphraseLine(buf[:n]), err}
	}()
	select {
	case r := <-got:
		return r.line, r.err
	case <-ctx.Done():
		return nil, context.Cause(ctx)
	}
}

// ttyPrintln writes a line on the controlling terminal, if any.
func ttyPrintln(msg string) {
	if tty, err := os.OpenFile("/dev/tty", os.O_WRONLY, 0); err == nil {
		fmt.Fprintln(tty, msg)
		tty.Close()
	}
}
