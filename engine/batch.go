package engine

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// Batch is one batch size of a phase, as a stack writes it: a number of
// nodes (2) or a percentage of the phase's nodes ("25%", rounded down, at
// least one node), as in Ansible's serial.
type Batch struct {
	Nodes   int // a number of nodes, or 0
	Percent int // a percentage of the phase's nodes, or 0

	bad string // what the stack wrote when it is neither; checkPhases reports it
}

// UnmarshalJSON reads 2 or "25%". Anything else is kept for checkPhases,
// which names the phase in its error.
func (b *Batch) UnmarshalJSON(data []byte) error {
	*b = Batch{bad: string(data)}
	var s string
	if json.Unmarshal(data, &s) == nil {
		if n, ok := strings.CutSuffix(s, "%"); ok {
			if p, err := strconv.Atoi(n); err == nil {
				*b = Batch{Percent: p}
				if p <= 0 {
					b.bad = string(data)
				}
			}
		}
		return nil
	}
	d := json.NewDecoder(bytes.NewReader(data))
	d.UseNumber()
	var num json.Number
	if d.Decode(&num) == nil {
		if n, err := strconv.Atoi(num.String()); err == nil {
			*b = Batch{Nodes: n}
			if n <= 0 {
				b.bad = string(data)
			}
		}
	}
	return nil
}

// MarshalJSON writes the batch as the stack wrote it.
func (b Batch) MarshalJSON() ([]byte, error) {
	if b.Percent > 0 {
		return json.Marshal(strconv.Itoa(b.Percent) + "%")
	}
	return json.Marshal(b.Nodes)
}

// size is the batch's number of nodes out of total.
func (b Batch) size(total int) int {
	if b.Percent > 0 {
		return max(1, total*min(b.Percent, 100)/100)
	}
	return max(1, b.Nodes)
}

// checkPhases says what is wrong with the phases a stack rendered: a batch
// size that is not a count or a percentage, serial and batches both set,
// an order that is not "" or one of orders (the driver's).
func checkPhases(phases []Phase, orders []string) error {
	for i, ph := range phases {
		where := fmt.Sprintf("phase %d (%s)", i+1, ph.Name)
		if ph.Serial && len(ph.Batches) > 0 {
			return fmt.Errorf("%s: serial and batches are both set: serial: true is batches: [1]", where)
		}
		for _, b := range ph.Batches {
			if b.bad != "" || b.Percent > 100 {
				return fmt.Errorf("%s: batch size %s: want a number of nodes of at least 1 (2) or a percentage of the phase's nodes from 1%% to 100%% (\"25%%\")", where, b)
			}
		}
		if ph.Order != "" && !contains(orders, ph.Order) {
			if len(orders) == 0 {
				return fmt.Errorf("%s: order %q: this stack's driver knows no orders (leave order out)", where, ph.Order)
			}
			want := make([]string, len(orders))
			for i, o := range orders {
				want[i] = strconv.Quote(o)
			}
			return fmt.Errorf("%s: order %q: want %s", where, ph.Order, strings.Join(want, " or "))
		}
	}
	return nil
}

// String is the batch as the stack wrote it, for messages.
func (b Batch) String() string {
	if b.bad != "" {
		return b.bad
	}
	out, _ := b.MarshalJSON()
	return string(out)
}

// batchesOf splits nodes, already in the phase's order, into the groups
// that run one after the other: the sizes in turn, the last one repeating
// until every node had its turn.
func (ph Phase) batchesOf(nodes []NodePlan) [][]NodePlan {
	sizes := ph.Batches
	switch {
	case ph.Serial:
		sizes = []Batch{{Nodes: 1}}
	case len(sizes) == 0:
		sizes = []Batch{{Percent: 100}}
	}
	total := len(nodes)
	var out [][]NodePlan
	for i := 0; len(nodes) > 0; i++ {
		k := min(sizes[min(i, len(sizes)-1)].size(total), len(nodes))
		out = append(out, nodes[:k:k])
		nodes = nodes[k:]
	}
	return out
}
