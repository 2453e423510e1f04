package modules

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"strings"

	"hastack.dev/hastack/internal/host"
	"hastack.dev/hastack/internal/secret"
)

// Quote quotes s for POSIX sh.
func Quote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./=:,@%+") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// SecretVar is the one way a script carries a password: it assigns a secret
// placeholder to the shell variable name, for a script that secret.Fill fills
// in and that is sent on stdin (sh -s), never on a command line. Scripts
// then use "$name", always double-quoted.
//
// The value is single-quoted, and inside single quotes sh gives no
// character a meaning but the quote itself: secret.Check refuses a password
// holding ' (or a newline, which could end the line), so a filled-in
// password is one literal word, whatever $ ; & | ( ) < > ` ! it holds
// (TestSecretVarInvariant keeps that so). Quote must not be used here: a
// placeholder is made of characters Quote leaves bare, and the password
// filled in for it would then be parsed by the node's root shell.
func SecretVar(name, placeholder string) string {
	if placeholder != secret.Placeholder && placeholder != secret.PreviousPlaceholder {
		panic("hastack bug: SecretVar of something other than a secret placeholder")
	}
	return name + "='" + placeholder + "'\n"
}

// NodePATH is the PATH every node script sets: the system's. A script
// never trusts the login's; a product module's prelude puts its own tools
// first.
const NodePATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// Exec runs cmd on h, stdin filled in already, and turns a non-zero exit
// into an error that quotes stderr masked (for product modules).
func Exec(ctx context.Context, h host.Host, cmd string, stdin []byte, sec secret.Secret) (host.Result, error) {
	return run(ctx, h, cmd, stdin, sec)
}

// run runs cmd and turns a non-zero exit into an error. The error quotes
// stderr (masked), never stdin.
func run(ctx context.Context, h host.Host, cmd string, stdin []byte, sec secret.Secret) (host.Result, error) {
	var in io.Reader
	if stdin != nil {
		in = bytes.NewReader(stdin)
	}
	// A password is filled into stdin only: a command line shows in ps.
	if strings.Contains(cmd, "@@hastack:") {
		return host.Result{}, fmt.Errorf("hastack bug: a secret placeholder in a command line")
	}
	res, err := h.Run(ctx, cmd, in)
	if err != nil {
		return res, err
	}
	if res.Code != 0 {
		msg := strings.TrimSpace(string(res.Stderr))
		if msg == "" {
			msg = strings.TrimSpace(string(res.Stdout))
		}
		msg = mask(msg, sec)
		msg = clip(msg)
		return res, fmt.Errorf("%s: exit %d: %s", secret.Mask(cmd), res.Code, msg)
	}
	return res, nil
}

// clip shortens a long error message to its head and its tail: a
// command's last lines usually say why it failed.
func clip(msg string) string {
	const head, tail = 120, 360
	if len(msg) <= head+tail {
		return msg
	}
	return strings.ToValidUTF8(msg[:head]+" … "+msg[len(msg)-tail:], "")
}

// factLines splits a probe's output into "key value" lines; a line
// "data <base64>" is decoded into data.
type fact struct {
	kv   map[string]string
	data []byte
	has  bool // data line present
}

func parseFact(b []byte) (fact, error) {
	f := fact{kv: map[string]string{}}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, _ := strings.Cut(line, " ")
		if k == "" {
			continue
		}
		if k == "data" {
			d, err := base64.StdEncoding.DecodeString(strings.TrimSpace(v))
			if err != nil {
				return f, fmt.Errorf("bad file data from node: %v", err)
			}
			f.data, f.has = d, true
			continue
		}
		f.kv[k] = v
	}
	return f, nil
}
