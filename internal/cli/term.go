package cli

import (
	"bytes"
	"io"
	"os"
	"regexp"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// isTerminal reports whether w is a terminal (not a pipe, file or buffer).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil && os.Getenv("TERM") != "dumb"
}

// wantColor decides the colour of plan text, as https://no-color.org and
// Terraform do: never with -no-color or a non-empty NO_COLOR; always with
// FORCE_COLOR set (other than "0"); otherwise only on a terminal.
func wantColor(env *Env, noColor bool) bool {
	if noColor || os.Getenv("NO_COLOR") != "" {
		return false
	}
	if v := os.Getenv("FORCE_COLOR"); v != "" && v != "0" {
		return true
	}
	return isTerminal(env.Stdout)
}

// useColor puts a colouring writer on env.Stdout when wantColor says so.
// It goes first, before redact wraps the stream: the colourer sits below
// the redaction and the escaping of control characters, so it sees only
// text that is already safe, and its own escape sequences are the only
// ones that reach the terminal. It holds a line until its end: call
// endColor before waiting for input after a prompt, and at the end.
func useColor(env *Env, noColor bool) {
	if wantColor(env, noColor) {
		env.color = &colorWriter{w: env.Stdout}
		env.Stdout = env.color
	}
}

// endColor writes out what the colourer holds of an unfinished line,
// after flush has pushed everything above it down.
func endColor(env *Env) {
	flush(env)
	if env.color != nil {
		env.color.Flush()
	}
}

const (
	sgrReset  = "\x1b[0m"
	sgrBold   = "\x1b[1m"
	sgrRed    = "\x1b[31m"
	sgrGreen  = "\x1b[32m"
	sgrYellow = "\x1b[33m"
	sgrCyan   = "\x1b[36m"
)

// symbolColor is the colour of a change's mark, as Terraform's: + green,
// ~ yellow, - red; a service action cyan, a command bold.
var symbolColor = map[byte]string{'+': sgrGreen, '~': sgrYellow, '-': sgrRed, '*': sgrCyan, '>': sgrBold}

// The shapes of the text plan's lines (engine.WriteText) and apply's
// lines (printEvent) that get colour; every other line is left as it is.
var (
	changeLine = regexp.MustCompile(`^  [-+~*>] `)       // "  ~ update /etc/x"
	diffLine   = regexp.MustCompile(`^      (?:[-+@])`)  // "      +new line" under a change
	eventLine  = regexp.MustCompile(`^[^ :]+: [-+~*>] `) // "node2: ~ conf:/etc/x: done (0.01s)"
)

// colorWriter colours whole lines by their shape. It holds the start of
// a line until the line ends (a line's text comes in several writes) or
// Flush (a prompt); a line flushed before its end is passed on as it is,
// and the rest of it too.
type colorWriter struct {
	mu      sync.Mutex
	w       io.Writer
	partial []byte // the start of a line not yet ended
	midLine bool   // the line's start was flushed uncoloured
}

func (c *colorWriter) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out bytes.Buffer
	c.partial = append(c.partial, p...)
	for {
		i := bytes.IndexByte(c.partial, '\n')
		if i < 0 {
			break
		}
		line := string(c.partial[:i])
		if !c.midLine {
			line = colorLine(line)
		}
		out.WriteString(line + "\n")
		c.midLine = false
		c.partial = c.partial[i+1:]
	}
	c.partial = append([]byte(nil), c.partial...)
	if out.Len() > 0 {
		if _, err := c.w.Write(out.Bytes()); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

// Flush writes out the start of a line it holds, uncoloured.
func (c *colorWriter) Flush() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.partial) == 0 {
		return nil
	}
	_, err := c.w.Write(c.partial)
	c.partial, c.midLine = nil, true
	return err
}

func colorLine(l string) string {
	paint := func(sgr string) string { return sgr + l + sgrReset }
	switch {
	case changeLine.MatchString(l):
		return "  " + symbolColor[l[2]] + l[2:3] + sgrReset + l[3:]
	case diffLine.MatchString(l):
		switch {
		case strings.HasPrefix(l[6:], "+++ "), strings.HasPrefix(l[6:], "--- "):
			return paint(sgrBold)
		case l[6] == '+':
			return paint(sgrGreen)
		case l[6] == '-':
			return paint(sgrRed)
		}
		return paint(sgrCyan) // @@ hunk
	case eventLine.MatchString(l):
		if strings.Contains(l, ": FAILED: ") {
			return paint(sgrRed)
		}
		i := strings.IndexByte(l, ' ') + 1
		return l[:i] + symbolColor[l[i]] + l[i:i+1] + sgrReset + l[i+1:]
	case strings.HasPrefix(l, "No changes."):
		return paint(sgrGreen + sgrBold)
	case strings.HasPrefix(l, "node "), strings.HasPrefix(l, "Plan: "), strings.HasPrefix(l, "Apply complete"):
		return paint(sgrBold)
	}
	return l
}
