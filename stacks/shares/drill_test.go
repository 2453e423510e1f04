package shares

import (
	"bytes"
	"context"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"hastack.dev/hastack/engine"
)

// The row check, on canned input: a committed row missing afterwards
// fails the drill; a row found whose commit the client never saw answered
// (in flight at the kill) is only in doubt.
func TestLostRows(t *testing.T) {
	lost, doubt := LostRows([]int{1, 2, 3, 4, 5, 6}, []int{1, 2, 4, 5, 6, 7})
	if !slices.Equal(lost, []int{3}) || !slices.Equal(doubt, []int{7}) {
		t.Fatalf("lost %v, in doubt %v; want [3] and [7]", lost, doubt)
	}
	f := &FailoverFigures{Old: "web1", New: "web2", Committed: []int{1, 2, 3, 4, 5, 6}, Before: 3, Passive: true}
	f.Found = []int{1, 2, 3, 4, 5, 6, 7}
	f.Lost, f.InDoubt = LostRows(f.Committed, f.Found)
	if p := f.Problems(); len(p) != 0 {
		t.Errorf("no row lost, old node passive: problems %v", p)
	}
	f.Found = []int{1, 2, 4, 5, 6, 7}
	f.Lost, f.InDoubt = LostRows(f.Committed, f.Found)
	if p := f.Problems(); len(p) != 1 || p[0] != "drill failover: 1 committed rows lost (seq 3)" {
		t.Errorf("row 3 lost: problems %q", p)
	}
	// No rows after the kill: nothing proves the new node kept them.
	f = &FailoverFigures{Old: "web1", New: "web2", Committed: []int{1, 2}, Before: 2, Found: []int{1, 2}, Passive: false}
	if p := f.Problems(); len(p) != 2 || !strings.Contains(p[0], "rows on both sides") || !strings.Contains(p[1], "web1, back, is not passive") {
		t.Errorf("rows on one side only, old node not passive: problems %q", p)
	}
}

// An unknown drill is a failed check, named; the failover drill does not
// run on an unhealthy tier (here: no node reached).
func TestCheckUnknownDrill(t *testing.T) {
	_, _, sys := loadTier(t)
	var out bytes.Buffer
	ok := sys.(engine.Checker).Check(context.Background(), engine.CheckRequest{Out: &out, Drills: []string{"nope", "failover"}})
	if ok {
		t.Fatal("check passed with no node reached and an unknown drill")
	}
	for _, want := range []string{"FAIL drill nope: the console web tier's stack has no such drill (it has failover)", "FAIL drill failover: not run: the tier is not healthy"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("check output lacks %q:\n%s", want, out.String())
		}
	}
}

type dialFunc func(ctx context.Context, addr string) (net.Conn, error)

func (f dialFunc) DialTCP(ctx context.Context, addr string) (net.Conn, error) { return f(ctx, addr) }

// The load balancer's probe passes a node that answers and fails one that
// answers 500 (Shares' /health_check with a transfer node down) or
// refuses the connection.
func TestProbe(t *testing.T) {
	code := http.StatusOK
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(code) }))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the tcp probe's handshake never comes
	srv.StartTLS()
	defer srv.Close()
	var d net.Dialer
	to := dialFunc(func(ctx context.Context, _ string) (net.Conn, error) {
		return d.DialContext(ctx, "tcp", srv.Listener.Addr().String())
	})
	for _, hc := range []HealthCheck{{Kind: "tcp", Port: 443}, {Kind: "http", Port: 443, Path: "/ok"}} {
		if what, err := Probe(context.Background(), to, "192.0.2.1", hc); err != nil {
			t.Errorf("%s: %v", what, err)
		}
	}
	code = http.StatusInternalServerError
	if what, err := Probe(context.Background(), to, "192.0.2.1", HealthCheck{Kind: "http", Port: 443, Path: "/ok"}); err == nil || !strings.Contains(err.Error(), "500") {
		t.Errorf("%s answered 500: err %v", what, err)
	}
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := l.Addr().String()
	l.Close()
	refused := dialFunc(func(ctx context.Context, _ string) (net.Conn, error) { return d.DialContext(ctx, "tcp", addr) })
	if what, err := Probe(context.Background(), refused, "192.0.2.1", HealthCheck{Kind: "tcp", Port: 443}); err == nil {
		t.Errorf("%s: passed with the port closed", what)
	}
}

// The drill's web client through the VIP, on canned requests: a failure
// begun within the health check's detection window is the window's cost,
// one begun after it fails the drill.
func TestVIPFigures(t *testing.T) {
	start := time.Now()
	v := &vipClient{reqs: []vipRequest{
		{at: start.Add(-time.Second), ok: false}, // before the kill: not counted
		{at: start.Add(100 * time.Millisecond), ok: false},
		{at: start.Add(2900 * time.Millisecond), ok: false},
		{at: start.Add(3500 * time.Millisecond), ok: true},
	}}
	good := &FailoverFigures{Old: "web1", New: "web2", Committed: []int{1, 2}, Before: 1, Found: []int{1, 2}, Passive: true,
		VIP: &VIPFigures{From: "lb2", Detection: 3 * time.Second}}
	v.figures(start, good.VIP)
	if g := *good.VIP; g.Sent != 3 || g.Failed != 2 || g.Late != 0 || g.LastFail != 2900*time.Millisecond {
		t.Errorf("figures %+v, want 3 sent, 2 failed within the window, the last at 2.9 s", g)
	}
	if p := good.Problems(); len(p) != 0 {
		t.Errorf("failures within the window only: problems %q", p)
	}
	v.reqs = append(v.reqs, vipRequest{at: start.Add(3200 * time.Millisecond), ok: false})
	late := &FailoverFigures{Old: "web1", New: "web2", Committed: []int{1, 2}, Before: 1, Found: []int{1, 2}, Passive: true,
		VIP: &VIPFigures{From: "lb2", Detection: 3 * time.Second}}
	v.figures(start, late.VIP)
	if p := late.Problems(); len(p) != 1 || p[0] != "drill failover: 1 web requests through the VIP failed after the health check's detection window (inter × fall 3.0 s), the last begun 3.2 s after the kill" {
		t.Errorf("a failure after the window: problems %q", p)
	}
	var b strings.Builder
	late.Write(&b, &Tier{ExpiryS: 4, RefreshS: 1})
	if !strings.Contains(b.String(), "drill failover: web through the VIP from lb2: 4 requests from the kill, 3 failed, the last begun 3.2 s after the kill (detection window inter × fall 3.0 s)\n") {
		t.Errorf("the figures' line:\n%s", b.String())
	}
}
