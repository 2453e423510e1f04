package massstore

import (
	"context"
	"time"
)

// Probe gives a test that makes a failure hastack cannot make (e2e's power
// cut of a whole server) the drills' own measures: their jobs, the
// survivors' throughput by the drills' rule (Measure.Met), Galera's state
// and the tally of a batch. sql reaches each node's database.
type Probe struct{ d *drill }

func (s *Stack) Probe(sql SQL) *Probe {
	return &Probe{&drill{s: s, out: &printer{}, query: sql}}
}

// Enqueue puts n jobs at stage in through node's database, in one
// transaction, and adds their ids to b.
func (p *Probe) Enqueue(ctx context.Context, node string, b Batch, stage string, n int) error {
	return p.d.enqueue(ctx, node, b, stage, n)
}

// MeasureThroughput is the server drill's measure with gone down: jobs
// (added to b) through via, each surviving instance's rate over 10 s.
func (p *Probe) MeasureThroughput(ctx context.Context, gone, via string, b Batch) ([]Measure, error) {
	return p.d.measure(ctx, gone, via, b)
}

// Galera is node's "size status state", e.g. "3 Primary Synced", or
// "(no answer: …)".
func (p *Probe) Galera(ctx context.Context, node string) string { return p.d.galera(ctx, node) }

// Tally waits up to limit for b to be done, then counts it from node's
// database: took is the wait.
func (p *Probe) Tally(ctx context.Context, node string, b Batch, limit time.Duration) (t Tally, took time.Duration, err error) {
	return p.d.tally(ctx, node, b, limit)
}

// Remove deletes b's jobs and their runs.
func (p *Probe) Remove(ctx context.Context, node string, b Batch) error {
	return p.d.remove(ctx, node, b)
}

// RunsAfter counts the runs after run id last by the given worker
// instances ("node1-datamover-1"); MaxRun is the last run's id.
func (p *Probe) RunsAfter(ctx context.Context, node string, last int64, workers []string) int {
	return p.d.runsAfter(ctx, node, last, workers)
}

func (p *Probe) MaxRun(ctx context.Context, node string) (int64, error) { return p.d.maxRun(ctx, node) }

// Workers lists the worker instance names on server.
func (s *Stack) Workers(server string) []string { return s.workers(server, true) }
