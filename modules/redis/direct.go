package redis

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"hastack.dev/hastack/internal/host"
	"hastack.dev/hastack/internal/secret"
	"hastack.dev/hastack/modules"
)

// redisTimeout bounds one exchange, as `timeout 5` does for redisq.
const redisTimeout = 5 * time.Second

// ask runs cmds on the server at addr ("ip port") and returns what
// redisq/redism would print: each reply on its own lines, a failed AUTH
// as "AUTH failed: ...", an unreachable server as "Could not connect".
// Like them it tries the previous password when the current one is
// refused (a rotation in progress). Its error is only ErrNoForwarding.
func ask(ctx context.Context, d host.Dialer, addr string, sec secret.Secret, cmds [][]string) (string, error) {
	hp := hostPort(addr)
	out, err := exchange(ctx, d, hp, sec.Value(), cmds)
	if err != nil {
		return "", err
	}
	if old := sec.Previous(); !old.IsZero() && answerState(out) == "auth-failed" {
		return exchange(ctx, d, hp, old.Value(), cmds)
	}
	return out, nil
}

func exchange(ctx context.Context, d host.Dialer, hostPort, pw string, cmds [][]string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, redisTimeout)
	defer cancel()
	conn, err := modules.DialTCP(ctx, d, hostPort)
	if errors.Is(err, modules.ErrNoForwarding) {
		return "", err
	}
	if err != nil {
		return fmt.Sprintf("Could not connect to Redis at %s: Connection refused\n", hostPort), nil
	}
	// SSH channels have no deadlines: closing the connection ends a read.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	defer conn.Close()

	var req []byte
	if pw != "" {
		req = appendCommand(req, []string{"AUTH", pw})
	}
	for _, c := range cmds {
		req = appendCommand(req, c)
	}
	if _, err := conn.Write(req); err != nil {
		return fmt.Sprintf("Could not connect to Redis at %s: %v\n", hostPort, err), nil
	}
	r := bufio.NewReader(conn)
	var b strings.Builder
	if pw != "" {
		v, err := readReply(r)
		if err != nil {
			return fmt.Sprintf("Error: %v\n", err), nil
		}
		if e, ok := v.(replyError); ok {
			fmt.Fprintf(&b, "AUTH failed: %s\n", e)
		}
	}
	for range cmds {
		v, err := readReply(r)
		if err != nil {
			fmt.Fprintf(&b, "Error: %v\n", err)
			break
		}
		writeRaw(&b, v)
		b.WriteByte('\n')
	}
	return b.String(), nil
}

// appendCommand encodes one command as a RESP array of bulk strings.
func appendCommand(b []byte, args []string) []byte {
	b = fmt.Appendf(b, "*%d\r\n", len(args))
	for _, a := range args {
		b = fmt.Appendf(b, "$%d\r\n%s\r\n", len(a), a)
	}
	return b
}

type replyError string

func (e replyError) String() string { return string(e) }

// readReply reads one RESP2 reply: string, replyError, int64, nil or []any.
func readReply(r *bufio.Reader) (any, error) {
	line, err := r.ReadString('\n')
	if err != nil {
		return nil, err
	}
	line = strings.TrimSuffix(line, "\r\n")
	if line == "" {
		return nil, errors.New("empty reply line")
	}
	body := line[1:]
	switch line[0] {
	case '+':
		return body, nil
	case '-':
		return replyError(body), nil
	case ':':
		return strconv.ParseInt(body, 10, 64)
	case '$':
		n, err := strconv.Atoi(body)
		if err != nil || n < 0 {
			return nil, err
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(r, buf); err != nil {
			return nil, err
		}
		return string(buf[:n]), nil
	case '*':
		n, err := strconv.Atoi(body)
		if err != nil || n < 0 {
			return nil, err
		}
		a := make([]any, n)
		for i := range a {
			if a[i], err = readReply(r); err != nil {
				return nil, err
			}
		}
		return a, nil
	}
	return nil, fmt.Errorf("unexpected reply %q", line)
}

// writeRaw prints a reply as redis-cli does when its output is not a
// terminal: array elements one per line, nested arrays flattened.
func writeRaw(b *strings.Builder, v any) {
	switch v := v.(type) {
	case []any:
		for i, e := range v {
			if i > 0 {
				b.WriteByte('\n')
			}
			writeRaw(b, e)
		}
	case nil:
	default:
		fmt.Fprint(b, v)
	}
}
