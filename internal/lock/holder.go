package lock

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/user"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// Holder says which run holds a lock. It is written beside the lock once the
// lock is taken, read back by a run that is refused, and saved in plan
// files. Every field is free of control characters (Clean).
type Holder struct {
	Who     string    `json:"who"`     // user@controller-host
	Since   time.Time `json:"since"`   // when the run took its first lock, UTC
	RunID   string    `json:"run_id"`  // random, one per run
	PID     int       `json:"pid"`     // the controller's process
	Command string    `json:"command"` // e.g. "hastack apply"
}

// NewHolder describes this process running command.
func NewHolder(command string) Holder {
	name := "unknown"
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	hostName, _ := os.Hostname()
	var id [8]byte
	rand.Read(id[:])
	return Holder{
		Who:     Clean(name + "@" + hostName),
		Since:   time.Now().UTC().Truncate(time.Second),
		RunID:   hex.EncodeToString(id[:]),
		PID:     os.Getpid(),
		Command: Clean(command),
	}
}

// String is the holder as the refusal names it.
func (h Holder) String() string {
	if h.Who == "" && h.RunID == "" {
		return "an unknown run (its details are not written yet)"
	}
	return fmt.Sprintf("%s since %s (run %s, pid %d, %s)", h.Who, h.Since.Format(time.RFC3339), h.RunID, h.PID, h.Command)
}

// maxField bounds each field: a holder file is small, whoever wrote it.
const maxField = 200

// Clean replaces control and other non-printing characters with '?' and
// cuts s to maxField bytes, so a holder's fields can neither move the
// terminal's cursor nor add lines to the holder file.
func Clean(s string) string {
	var b strings.Builder
	for _, r := range s {
		if b.Len() >= maxField {
			break
		}
		if unicode.IsPrint(r) {
			b.WriteRune(r)
		} else {
			b.WriteByte('?')
		}
	}
	return b.String()
}

// encode is the holder file's text: one key=value line per field.
func (h Holder) encode() string {
	return fmt.Sprintf("who=%s\nsince=%s\nrun=%s\npid=%d\ncommand=%s\n",
		Clean(h.Who), h.Since.UTC().Format(time.RFC3339), Clean(h.RunID), h.PID, Clean(h.Command))
}

// parseHolder reads encode's text. Unknown or broken lines are ignored:
// the file is only used to name the holder.
func parseHolder(text string) Holder {
	var h Holder
	for _, line := range strings.Split(text, "\n") {
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		v = Clean(v)
		switch k {
		case "who":
			h.Who = v
		case "since":
			h.Since, _ = time.Parse(time.RFC3339, v)
		case "run":
			h.RunID = v
		case "pid":
			h.PID, _ = strconv.Atoi(v)
		case "command":
			h.Command = v
		}
	}
	return h
}
