package engine

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// mdBlock is a run of Markdown lines that must be closed wherever a part
// ends inside it: a node's <details>, or the summary (which has nothing
// to close).
type mdBlock struct {
	open   string // before the block's first line
	reopen string // before its first line in each later part
	close  string // after its last line in each part
	lines  []mdLine
}

// mdLine is one line, and the opening fence of the code block it is in
// ("" for Markdown text). Fences are opened and closed between lines as
// the fence changes, and at every cut.
type mdLine struct {
	text  string
	fence string
}

// closer is the line that closes a code block opened by fence: its
// backticks without the info string.
func closer(fence string) string {
	return fence[:len(fence)-len(strings.TrimLeft(fence, "`"))]
}

// fenceSwitch is what goes between a line in fence from and one in to.
func fenceSwitch(from, to string) string {
	if from == to {
		return ""
	}
	s := ""
	if from != "" {
		s += closer(from) + "\n"
	}
	if to != "" {
		s += to + "\n"
	}
	return s
}

func (b mdBlock) size() int {
	n, fence := len(b.open)+len(b.close), ""
	for _, l := range b.lines {
		n += len(fenceSwitch(fence, l.fence)) + len(l.text) + 1
		fence = l.fence
	}
	return n + len(fenceSwitch(fence, ""))
}

// The part's heading and its footer, and the most they can take: the
// packer keeps room for the largest, and the numbers are filled in once
// the parts are counted.
func partHead(k, n int) string {
	s := fmt.Sprintf(partMarker, k, n) + "\n### hastack plan"
	switch {
	case k > 1:
		s += fmt.Sprintf(" (part %d of %d, continued)", k, n)
	case n > 1:
		s += fmt.Sprintf(" (part %d of %d)", k, n)
	}
	return s + "\n\n"
}

func partFoot(k, n int) string {
	if k == n {
		return ""
	}
	return fmt.Sprintf("_Continued in part %d of %d._\n", k+1, n)
}

// packer fills parts with blocks, one line at a time. After every line
// the part has room left for what would close it there (the open fence,
// the block's close), so it can end after any line.
type packer struct {
	budget int // a part's limit less the largest heading and footer
	parts  []string
	cur    strings.Builder
}

// pack fills the parts. The heading and footer name the part's number
// and the number of parts, which are known only at the end: the parts are
// packed for numbers of one digit, and again for two if they were more
// than 9, and so on.
func pack(blocks []mdBlock, limit int) ([]string, error) {
	for most := 9; most < 1e7; most = most*10 + 9 {
		p := &packer{budget: limit - len(partHead(most, most)) - len(partFoot(most-1, most))}
		for _, b := range blocks {
			if err := p.block(b); err != nil {
				return nil, err
			}
		}
		p.flush()
		n := len(p.parts)
		if n > most {
			continue
		}
		for k := range p.parts {
			p.parts[k] = partHead(k+1, n) + p.parts[k] + partFoot(k+1, n)
		}
		return p.parts, nil
	}
	return nil, fmt.Errorf("the plan needs more than ten million Markdown parts")
}

func (p *packer) fits(n int) bool { return p.cur.Len()+n <= p.budget }

func (p *packer) flush() {
	if p.cur.Len() > 0 || len(p.parts) == 0 {
		p.parts = append(p.parts, p.cur.String())
		p.cur.Reset()
	}
}

// block adds b, cutting it between lines where a part is full. A block
// that would fit whole in a part of its own is not cut: it starts the
// next part instead.
func (p *packer) block(b mdBlock) error {
	if p.cur.Len() > 0 && !p.fits(b.size()) && b.size() <= p.budget {
		p.flush()
	}
	opened, continued, fence := false, false, ""
	for _, l := range b.lines {
		for {
			open, from := "", fence
			if !opened {
				open, from = b.open, ""
				if continued {
					open = b.reopen
				}
			}
			frame := len(open) + len(fenceSwitch(from, l.fence)) + 1 + len(fenceSwitch(l.fence, "")) + len(b.close)
			if p.fits(frame + len(l.text)) {
				break
			}
			if opened { // end the block here and go on in the next part
				p.cur.WriteString(fenceSwitch(fence, "") + b.close)
				p.flush()
				opened, continued, fence = false, true, ""
				continue
			}
			if p.cur.Len() > 0 {
				p.flush()
				continue
			}
			// Alone in an empty part and still too long: cut the line.
			room := p.budget - frame
			if room < 0 {
				return fmt.Errorf("a Markdown part of this size cannot hold a node's heading")
			}
			l.text = cutLine(l.text, room)
			break
		}
		if !opened {
			if continued {
				p.cur.WriteString(b.reopen)
			} else {
				p.cur.WriteString(b.open)
			}
			opened = true
		}
		p.cur.WriteString(fenceSwitch(fence, l.fence))
		fence = l.fence
		p.cur.WriteString(l.text + "\n")
	}
	if opened {
		p.cur.WriteString(fenceSwitch(fence, "") + b.close)
	}
	return nil
}

// cutLine shortens s to at most room bytes, at a character boundary, with
// a note of how much was left out; the text plan has the whole line.
func cutLine(s string, room int) string {
	note := func(n int) string {
		return fmt.Sprintf(" … (line cut: %d more bytes; the text plan has all of it)", n)
	}
	keep := room - len(note(len(s)))
	if keep < 0 {
		keep = 0
	}
	for keep > 0 && !utf8.RuneStart(s[keep]) {
		keep--
	}
	return s[:keep] + note(len(s)-keep)
}
