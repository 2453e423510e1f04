package sshconn

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/pkg/sftp"

	"hastack.dev/hastack/internal/host"
)

// sftpServerPaths are where distributions install OpenSSH's sftp-server:
// Debian and Ubuntu, Fedora and RHEL, Arch and Alpine, openSUSE, others.
var sftpServerPaths = []string{
	"/usr/lib/openssh/sftp-server",
	"/usr/libexec/openssh/sftp-server",
	"/usr/lib/ssh/sftp-server",
	"/usr/libexec/ssh/sftp-server",
	"/usr/lib/sftp-server",
	"/usr/libexec/sftp-server",
}

// sftpSshd is the sshd asked for its configured sftp subsystem ("sshd -T")
// when no path above holds sftp-server.
var sftpSshd = "sshd"

// noSFTPServer starts the message of a script that found no sftp-server.
const noSFTPServer = "no sftp-server found"

// sftpServerScript starts the first sftp-server found, with umask 077 so every
// file it creates is 0600 from the first moment (pkg/sftp cannot pass a mode
// when opening a file, and the server default would be 0644 for an instant).
// With bin it starts that one only; without, it tries sftpServerPaths, then
// the program of sshd's "Subsystem sftp" line (sshd -T, as root).
func sftpServerScript(bin string) string {
	if bin != "" {
		p := ShellQuote(bin)
		return `umask 077; if [ -x ` + p + ` ]; then exec ` + p + `; fi; ` +
			`echo "` + noSFTPServer + ` (tried ` + strings.ReplaceAll(p, "'", "") + `)" >&2; exit 127`
	}
	quoted := make([]string, len(sftpServerPaths))
	for i, p := range sftpServerPaths {
		quoted[i] = ShellQuote(p)
	}
	return `umask 077; for p in ` + strings.Join(quoted, " ") + `; do if [ -x "$p" ]; then exec "$p"; fi; done; ` +
		`p=$(` + ShellQuote(sftpSshd) + ` -T 2>/dev/null | sed -n 's/^subsystem sftp \(\/[^ ]*\).*/\1/p'); ` +
		`if [ -n "$p" ] && [ -x "$p" ]; then exec "$p"; fi; ` +
		`echo "` + noSFTPServer + ` (tried ` + strings.Join(sftpServerPaths, ", ") + ` and sshd's Subsystem sftp)" >&2; exit 127`
}

// errNoSFTPServer is a node with no sftp-server binary we could start.
var errNoSFTPServer = errors.New(noSFTPServer)

// sftpClient opens the connection's SFTP session on first use. A failure is
// not remembered: the next write tries again.
//
// The default starts sftp-server ourselves (under sudo when needed) with
// umask 077. When the node has none and we log in as root, sshd's own sftp
// subsystem is used instead (e.g. internal-sftp): it serves files with
// sshd's umask, so each temp file is then made 0600 by a shell first.
func (c *Conn) sftpClient(ctx context.Context) (*sftp.Client, error) {
	c.sftpMu.Lock()
	defer c.sftpMu.Unlock()
	select {
	case <-c.done:
		return nil, errors.New("connection closed")
	default:
	}
	if c.sftp != nil {
		return c.sftp, nil
	}
	sub := c.cfg.SFTPServer == SFTPSubsystem
	cl, err := c.startSFTP(ctx, sub)
	if errors.Is(err, errNoSFTPServer) && c.cfg.SFTPServer == "" && !c.sudo {
		sub = true
		var serr error
		if cl, serr = c.startSFTP(ctx, true); serr != nil {
			cl, err = nil, fmt.Errorf("%w, and sshd offers no sftp subsystem (%v): install OpenSSH's sftp-server (Debian, Ubuntu: openssh-sftp-server)", err, serr)
		}
	} else if errors.Is(err, errNoSFTPServer) {
		err = fmt.Errorf("%w: install OpenSSH's sftp-server (Debian, Ubuntu: openssh-sftp-server)", err)
	}
	if cl == nil {
		return nil, err
	}
	if _, ok := cl.HasExtension("posix-rename@openssh.com"); !ok {
		cl.Close()
		return nil, errors.New("the SFTP server lacks posix-rename@openssh.com, needed to replace files atomically")
	}
	c.sftp, c.sftpSub = cl, sub
	return cl, nil
}

// startSFTP opens an SFTP session: sshd's subsystem, or sftp-server
// started by sftpServerScript. ctx bounds the start.
func (c *Conn) startSFTP(ctx context.Context, subsystem bool) (*sftp.Client, error) {
	s, err := c.newSession(ctx)
	if err != nil {
		return nil, fmt.Errorf("open SSH session for SFTP: %w", err)
	}
	stop := context.AfterFunc(ctx, func() { s.Close() })
	defer stop()
	w, err := s.StdinPipe()
	if err != nil {
		s.Close()
		return nil, err
	}
	r, err := s.StdoutPipe()
	if err != nil {
		s.Close()
		return nil, err
	}
	var stderr strings.Builder
	if subsystem {
		err = s.RequestSubsystem("sftp")
	} else {
		s.Stderr = &limitedWriter{w: &stderr, n: 512}
		err = s.Start(c.commandLine(sftpServerScript(c.cfg.SFTPServer)))
	}
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("start SFTP: %w", err)
	}
	cl, err := sftp.NewClientPipe(r, w, sftp.UseConcurrentWrites(true))
	if err == nil {
		return cl, nil
	}
	// Let the session end so its stderr is complete, but do not hang on
	// a server that keeps it open.
	w.Close()
	waited := make(chan struct{})
	go func() { s.Wait(); close(waited) }()
	var msg string
	select {
	case <-waited:
		msg = strings.TrimSpace(stderr.String())
	case <-time.After(2 * time.Second):
	}
	s.Close()
	if strings.HasPrefix(msg, noSFTPServer) {
		return nil, fmt.Errorf("%w%s", errNoSFTPServer, strings.TrimPrefix(msg, noSFTPServer))
	}
	if msg != "" {
		return nil, fmt.Errorf("start SFTP: %s", msg)
	}
	return nil, fmt.Errorf("start SFTP: %w", err)
}

type limitedWriter struct {
	w interface{ WriteString(string) (int, error) }
	n int
}

func (l *limitedWriter) Write(p []byte) (int, error) {
	if len(p) > l.n {
		l.w.WriteString(string(p[:l.n]))
		l.n = 0
	} else {
		l.w.WriteString(string(p))
		l.n -= len(p)
	}
	return len(p), nil
}

// WriteFile replaces f.Path atomically over SFTP: a 0600 temp file in the same
// directory, written, synced (when the server offers fsync@openssh.com),
// moded, owned, then renamed over the target with posix-rename. Once started
// it ignores ctx cancellation (and Close waits for it), and on any error it
// removes the temp file.
func (c *Conn) WriteFile(ctx context.Context, f host.File) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s: write %s: %w", c.name, f.Path, context.Cause(ctx))
	}
	if !c.beginWrite() {
		return fmt.Errorf("%s: write %s: connection closed", c.name, f.Path)
	}
	defer c.writes.Done()
	if err := c.writeFile(context.WithoutCancel(ctx), f); err != nil {
		return fmt.Errorf("%s: write %s: %w", c.name, f.Path, err)
	}
	return nil
}

func (c *Conn) writeFile(ctx context.Context, f host.File) (err error) {
	cl, err := c.sftpClient(ctx)
	if err != nil {
		return err
	}
	tmp := host.TempName(f.Path)
	var fh *sftp.File
	if c.sftpSub {
		// The subsystem's umask is not ours: create the file 0600 with a
		// shell first, then open it without O_CREATE.
		res, rerr := c.Run(ctx, "umask 077 && set -C && : > "+ShellQuote(tmp), nil)
		if rerr != nil {
			return rerr
		}
		if res.Code != 0 {
			return fmt.Errorf("create temp file: %s", strings.TrimSpace(string(res.Stderr)))
		}
		fh, err = cl.OpenFile(tmp, os.O_WRONLY)
	} else {
		fh, err = cl.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL)
	}
	if err != nil {
		if c.sftpSub {
			cl.Remove(tmp)
		}
		return fmt.Errorf("create temp file: %w", err)
	}
	defer func() {
		if err != nil {
			fh.Close()
			cl.Remove(tmp)
		}
	}()
	if _, err = fh.Write(f.Data); err != nil {
		return fmt.Errorf("write temp file: %w", err)
	}
	if _, ok := cl.HasExtension("fsync@openssh.com"); ok {
		if err = fh.Sync(); err != nil {
			return fmt.Errorf("fsync temp file: %w", err)
		}
	}
	if err = fh.Chmod(f.Mode.Perm()); err != nil {
		return fmt.Errorf("chmod temp file: %w", err)
	}
	if f.UID >= 0 || f.GID >= 0 {
		if err = chown(fh, f.UID, f.GID); err != nil {
			return fmt.Errorf("chown temp file: %w", err)
		}
	}
	if err = fh.Close(); err != nil {
		return fmt.Errorf("close temp file: %w", err)
	}
	if err = cl.PosixRename(tmp, f.Path); err != nil {
		return fmt.Errorf("rename temp file: %w", err)
	}
	return nil
}

// chown sets the owner; -1 keeps that id (SFTP has no "unchanged" value, so
// the current one is read back first).
func chown(fh *sftp.File, uid, gid int) error {
	if uid < 0 || gid < 0 {
		st, err := fh.Stat()
		if err != nil {
			return err
		}
		fs, ok := st.Sys().(*sftp.FileStat)
		if !ok {
			return errors.New("server did not report the owner")
		}
		if uid < 0 {
			uid = int(fs.UID)
		}
		if gid < 0 {
			gid = int(fs.GID)
		}
	}
	return fh.Chown(uid, gid)
}
