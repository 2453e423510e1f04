package sshconn

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// maxKnownHostsLine is the longest line x/crypto's reader takes (its
// bufio.Scanner's limit, less a margin); a longer one fails the whole file.
const maxKnownHostsLine = 60 << 10

// loadKnownHosts is knownhosts.New, except that a line it cannot parse is
// skipped, as OpenSSH does, instead of failing every node. The one
// exception fails closed: an unparsable @revoked line, since skipping it
// would trust a key its author meant to refuse. skipped lists the skipped
// lines (file:line: why); rename maps the copies read in their place back
// to the real files, for messages.
func loadKnownHosts(files []string) (cb ssh.HostKeyCallback, skipped []string, rename map[string]string, err error) {
	cb, err = knownhosts.New(files...)
	if err == nil {
		return cb, nil, nil, nil // the usual case: no copy, no extra work
	}
	if len(files) == 0 {
		return nil, nil, nil, err
	}
	// Read every file, blank out the lines x/crypto refuses one by one (it
	// names the first bad line), and read the cleaned copies instead. Blank
	// lines keep the line numbers of every other entry.
	dir, derr := os.MkdirTemp("", "hastack-known-hosts-")
	if derr != nil {
		return nil, nil, nil, err
	}
	defer os.RemoveAll(dir)
	lines := make([][][]byte, len(files))
	copies := make([]string, len(files))
	rename = map[string]string{}
	for i, f := range files {
		b, rerr := os.ReadFile(f)
		if rerr != nil {
			return nil, nil, nil, rerr
		}
		lines[i] = bytes.Split(b, []byte("\n"))
		copies[i] = filepath.Join(dir, strconv.Itoa(i))
		rename[copies[i]] = f
		for n, l := range lines[i] {
			if len(l) > maxKnownHostsLine {
				if err := skipLine(&skipped, f, n+1, lines[i], "line too long"); err != nil {
					return nil, nil, nil, err
				}
			}
		}
	}
	for {
		for i := range files {
			if werr := os.WriteFile(copies[i], bytes.Join(lines[i], []byte("\n")), 0o600); werr != nil {
				return nil, nil, nil, werr
			}
		}
		cb, err = knownhosts.New(copies...)
		if err == nil {
			return cb, skipped, rename, nil
		}
		i, n, why, ok := badLine(err, copies)
		if !ok || n < 1 || n > len(lines[i]) || len(bytes.TrimSpace(lines[i][n-1])) == 0 {
			return nil, nil, nil, errors.New(strings.ReplaceAll(err.Error(), copies[max(i, 0)], files[max(i, 0)]))
		}
		if err := skipLine(&skipped, files[i], n, lines[i], why); err != nil {
			return nil, nil, nil, err
		}
	}
}

// skipLine blanks line n (1-based) of file f, or refuses when it is a
// @revoked entry (any spelling of the marker).
func skipLine(skipped *[]string, f string, n int, lines [][]byte, why string) error {
	word, _, _ := strings.Cut(strings.TrimSpace(string(lines[n-1])), " ")
	if strings.HasPrefix(strings.ToLower(word), "@revoked") {
		return fmt.Errorf("known_hosts %s:%d: a @revoked line that cannot be read (%s): fix or remove it; hastack will not guess which key it revokes", f, n, why)
	}
	lines[n-1] = nil
	*skipped = append(*skipped, fmt.Sprintf("%s:%d: %s", f, n, why))
	return nil
}

// badLine finds the copy and line number in knownhosts.New's error
// "knownhosts: FILE:LINE: why".
func badLine(err error, copies []string) (file, line int, why string, ok bool) {
	msg := err.Error()
	for i, c := range copies {
		rest, found := strings.CutPrefix(msg, "knownhosts: "+c+":")
		if !found {
			continue
		}
		num, why, found := strings.Cut(rest, ": ")
		n, cerr := strconv.Atoi(num)
		if !found || cerr != nil {
			return i, 0, "", false
		}
		return i, n, why, true
	}
	return -1, 0, "", false
}
