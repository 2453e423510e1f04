package cli

import (
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"golang.org/x/sys/unix"

	"hastack.dev/hastack/engine"
	"hastack.dev/hastack/internal/termsafe"
)

// progress is apply's live line on a terminal: how many changes are done
// and what each busy node is doing, redrawn in place on stderr. apply's
// own lines (one per change done, on stdout) print above it. A nil
// progress (stderr is not a terminal) draws nothing: the lines alone are
// the plain progress a CI log keeps.
type progress struct {
	mu    sync.Mutex
	w     io.Writer // the terminal itself, under no redactor or escaper: the line is ours
	width int
	total int
	done  int
	ours  map[*engine.ResourceChange]bool // the plans' changes (a driver's steps are not counted)
	busy  map[string]busyStep
	drawn bool
	ended bool
	stop  chan struct{}
	now   func() time.Time
}

type busyStep struct {
	id    string
	since time.Time
}

// newProgress starts the line on w when w is a terminal, else returns nil.
func newProgress(w io.Writer, plans []*engine.Plan) *progress {
	if !isTerminal(w) {
		return nil
	}
	p := startProgress(w, plans, termWidth(w))
	go p.tick(time.Second)
	return p
}

func startProgress(w io.Writer, plans []*engine.Plan, width int) *progress {
	p := &progress{w: w, width: width, ours: map[*engine.ResourceChange]bool{}, busy: map[string]busyStep{},
		stop: make(chan struct{}), now: time.Now}
	for _, pl := range plans {
		for _, n := range pl.Nodes {
			for _, c := range n.Changes {
				p.ours[c] = true
			}
		}
	}
	p.total = len(p.ours)
	return p
}

// termWidth is the terminal's width in columns (80 when unknown).
func termWidth(w io.Writer) int {
	if f, ok := w.(*os.File); ok {
		if ws, err := unix.IoctlGetWinsize(int(f.Fd()), unix.TIOCGWINSZ); err == nil && ws.Col > 0 {
			return int(ws.Col)
		}
	}
	return 80
}

// tick redraws every interval, so that a long step's time goes up.
func (p *progress) tick(interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-t.C:
			p.mu.Lock()
			p.draw()
			p.mu.Unlock()
		}
	}
}

// start is apply's StartFunc: node begins c.
func (p *progress) start(node string, c *engine.ResourceChange) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.busy[node] = busyStep{id: c.ID, since: p.now()}
	p.draw()
}

// event prints an apply line (print) above the live line, and counts it.
func (p *progress) event(ev engine.Event, print func()) {
	if p == nil {
		print()
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.clear()
	print()
	if p.ours[ev.Change] {
		p.done++
		delete(p.busy, ev.Node)
	}
	p.draw()
}

// finish removes the line for good.
func (p *progress) finish() {
	if p == nil {
		return
	}
	close(p.stop)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.clear()
	p.ended = true
}

func (p *progress) clear() {
	if p.drawn {
		io.WriteString(p.w, "\r\x1b[K")
		p.drawn = false
	}
}

// draw writes the line over the last one: "apply: 3 of 12 changes done ·
// node2: service:redis (14s) · node3: ...", cut to the terminal's width.
func (p *progress) draw() {
	if p.ended {
		return
	}
	nodes := make([]string, 0, len(p.busy))
	for n := range p.busy {
		nodes = append(nodes, n)
	}
	sort.Strings(nodes)
	parts := []string{fmt.Sprintf("apply: %d of %d changes done", p.done, p.total)}
	for _, n := range nodes {
		b := p.busy[n]
		parts = append(parts, fmt.Sprintf("%s: %s (%ds)", termsafe.String(n), shortID(termsafe.String(b.id)), int(p.now().Sub(b.since).Seconds())))
	}
	line := strings.Join(parts, " · ")
	if room := p.width - 1; utf8.RuneCountInString(line) > room {
		line = string([]rune(line)[:room-1]) + "…"
	}
	io.WriteString(p.w, "\r\x1b[K"+line)
	p.drawn = true
}

// shortID keeps a long resource ID's kind and the end of its name, where
// it differs from its neighbours: "conf:…/sentinel_41415.conf".
func shortID(id string) string {
	const most = 28
	r := []rune(id)
	if len(r) <= most {
		return id
	}
	kind, _, _ := strings.Cut(id, ":")
	if k := len([]rune(kind)); k < most-8 {
		return kind + ":…" + string(r[len(r)-(most-k-2):])
	}
	return string(r[:most-1]) + "…"
}
