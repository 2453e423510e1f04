package massstore

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"strings"
	"testing"

	"hastack.dev/hastack/engine"
)

// The kill drill's verdict comes from the queue tables: canned rows of a
// batch of three jobs, read back as the drill reads them.
func TestTallyCatchesDuplicateAndLoss(t *testing.T) {
	b := Batch{1: "move", 2: "move", 3: "transcode"}
	done := []Row{{1, "done"}, {2, "done"}, {3, "done"}}
	clean := []Row{{1, "move"}, {1, "transcode"}, {2, "move"}, {2, "transcode"}, {3, "transcode"}}
	if tl := b.Count(done, clean); !tl.OK() || !strings.Contains(tl.String(), "3 drill jobs: 0 lost or not done, 0 done twice") {
		t.Fatalf("a clean batch: %v", tl)
	}
	// Job 2 transcoded twice (two servers' workers both committed it).
	twice := append(append([]Row{}, clean...), Row{2, "transcode"})
	if tl := b.Count(done, twice); tl.OK() || len(tl.Twice) != 1 || !strings.Contains(tl.String(), "done twice: job 2 transcode ×2") {
		t.Fatalf("a duplicated run is not caught: %v", tl)
	}
	// Job 1 gone from the queue, job 3 still waiting.
	lost := []Row{{2, "done"}, {3, "transcode"}}
	if tl := b.Count(lost, clean); tl.OK() || len(tl.NotDone) != 2 || !strings.Contains(tl.String(), "job 1 gone, job 3 at transcode") {
		t.Fatalf("lost jobs are not caught: %v", tl)
	}
	// Done without its move step's run; a run of a stage the job was never in.
	odd := []Row{{1, "transcode"}, {2, "move"}, {2, "transcode"}, {3, "transcode"}, {3, "move"}}
	if tl := b.Count(done, odd); tl.OK() || len(tl.Missing) != 1 || len(tl.Unwanted) != 1 {
		t.Fatalf("a step without a run or a foreign run is not caught: %v", tl)
	}
}

func TestThroughputOf(t *testing.T) {
	// Instance 1: 21 runs 0.5 s apart, exactly 2 jobs/s, no jitter.
	// Instance 3: 2 jobs/s with its runs ±2 ms off the schedule. An
	// instance with one run, or none, carries 0.
	var rows strings.Builder
	for i := range 21 {
		fmt.Fprintf(&rows, "n1-transcode-1\t%.3f\n", 1000+0.5*float64(i))
		fmt.Fprintf(&rows, "n1-transcode-3\t%.3f\n", 1000.2+0.5*float64(i)+0.002*float64(i%2*2-1))
	}
	rows.WriteString("n1-transcode-5\t1000.1\n")
	rate, e, per := throughputOf(rows.String(), []string{"n1-transcode-1", "n1-transcode-3", "n1-transcode-5", "n1-transcode-7"})
	if math.Abs(rate-4) > 0.001 || per != "n1-transcode-1 2.000, n1-transcode-3 2.000, n1-transcode-5 0.000, n1-transcode-7 0.000" {
		t.Fatalf("rate %v (%s), want 4", rate, per)
	}
	// σ of instance 3's intervals is 4 ms: 2 jobs/s × 0.004/10 s.
	if math.Abs(e-0.0008) > 0.0001 {
		t.Fatalf("error %v, want 0.0008", e)
	}
	// A stall of 1 s is not hidden by the error: 20 jobs in 11 s.
	rows.Reset()
	for i := range 21 {
		s := 0.5 * float64(i)
		if i >= 10 {
			s++
		}
		fmt.Fprintf(&rows, "w\t%.3f\n", 1000+s)
	}
	if rate, e, _ := throughputOf(rows.String(), []string{"w"}); rate+3*e >= 2 {
		t.Fatalf("a stalled instance measures %.3f ± %.3f, not below 2", rate, e)
	}
}

// An unknown drill is a failed check, and runs nothing else: no host is
// asked anything (there are none here).
func TestUnknownDrillFails(t *testing.T) {
	var out bytes.Buffer
	s := &Stack{Servers: []string{"ms1", "ms2"}, Witness: "arb"}
	if s.drills(context.Background(), engine.CheckRequest{Out: &out, Drills: []string{"kill", "explode"}}) {
		t.Fatal("an unknown drill passed")
	}
	if got := out.String(); !strings.Contains(got, "FAIL  -     drill explode: the MassStore stack has no such drill (it has: kill, server, vip)") || !strings.Contains(got, "1 of 1 checks FAILED") {
		t.Fatalf("output:\n%s", got)
	}
}

func TestQuorumWeight(t *testing.T) {
	w := &Stack{Servers: []string{"a", "b"}, Witness: "w"}
	if w.weight([]string{"a", "b", "w"}) != 3 || w.weight([]string{"b", "w"}) != 2 {
		t.Fatal("with a witness every voter weighs 1")
	}
	sbr := &Stack{Servers: []string{"a", "b"}, AcceptSBR: true}
	if sbr.weight([]string{"a", "b", ""}) != 3 || sbr.weight([]string{"b"}) != 1 || sbr.weight([]string{"a"}) != 2 {
		t.Fatal("an accepted split-brain risk gives the first server 2")
	}
}
