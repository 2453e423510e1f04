package check

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"hastack.dev/hastack/engine/config"
	"hastack.dev/hastack/internal/host"
	"hastack.dev/hastack/stacks/hsts"
)

// fakeAPI is a Node API cluster of three nodes behind a VIP, in memory,
// on a fake clock, with the failures the bearer drill must catch as knobs.
type fakeAPI struct {
	mu    sync.Mutex
	now   time.Time
	next  int               // round robin through the VIP
	users map[string]string // node user → password
	keys  map[string]bool   // access key ids
	// made is asnodeadmin --bearer-create's arguments, by flag.
	made map[string]string
	// scripts sent to the nodes, in order.
	scripts []string

	onlyNode     string // the token verifies on this node only
	userCreates  bool   // a user-scope token may create access keys
	ignoreExpiry bool   // an expired token is accepted
	leakToken    bool   // refusals quote the token
	createFails  string // this node answers 500 to POST /access_keys
	cancelAt     string // cancel when the drill's script contains this
	cancel       context.CancelFunc
}

var fakeNodes = []string{"node1", "node2", "node3"}

func newFakeAPI() *fakeAPI {
	return &fakeAPI{now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), users: map[string]string{leftover: "x"}, keys: map[string]bool{leftover: true}}
}

func (f *fakeAPI) clock() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

func (f *fakeAPI) sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if d > 0 {
		f.now = f.now.Add(d)
	}
	return nil
}

// node is the fake SSH connection to one node: it answers the drill's
// scripts from the shared state.
type fakeBearerNode struct {
	name string
	api  *fakeAPI
}

func (n *fakeBearerNode) Name() string                               { return n.name }
func (n *fakeBearerNode) Close() error                               { return nil }
func (n *fakeBearerNode) WriteFile(context.Context, host.File) error { return errors.New("no files") }

var (
	auRE     = regexp.MustCompile(`pw=(\S+)\nasnodeadmin -au (\S+) `)
	duRE     = regexp.MustCompile(`asnodeadmin -du (\S+) `)
	flagRE   = regexp.MustCompile(`--([a-z-]+) ([^-\s]\S*)`)
	leftover = "hastack-check-bearer-0123456789ab"
)

func (n *fakeBearerNode) Run(_ context.Context, cmd string, stdin io.Reader) (host.Result, error) {
	in, _ := io.ReadAll(stdin)
	s := string(in)
	f := n.api
	f.mu.Lock()
	defer f.mu.Unlock()
	f.scripts = append(f.scripts, n.name+": "+s)
	if f.cancelAt != "" && strings.Contains(s, f.cancelAt) {
		f.cancel()
	}
	b := boundaryRE.FindString(s)
	var out bytes.Buffer
	switch {
	case strings.Contains(s, "uname -n"):
		fmt.Fprintf(&out, "host-%s\n%d.%09d\n", n.name, f.now.Unix(), f.now.Nanosecond())
	case strings.Contains(s, "asnodeadmin -au"):
		m := auRE.FindStringSubmatch(s)
		f.users[m[2]] = m[1]
		fmt.Fprintf(&out, "%s leftover\n%s\n%s add\nAdded user %s\n%s=rc 0\n%s end\n", b, leftover, b, m[2], b, b)
	case strings.Contains(s, "--bearer-create"):
		f.made = map[string]string{}
		for _, m := range flagRE.FindAllStringSubmatch(s, -1) {
			f.made[m[1]] = m[2]
		}
		tok := base64.RawURLEncoding.EncodeToString([]byte(f.made["access-key"]+" "+f.made["scope-role"]+" "+f.made["expires-at"])) + ".sig"
		fmt.Fprintf(&out, "%s token\n%s\n%s err\n%s=rc 0\n%s end\n", b, tok, b, b, b)
	case strings.Contains(s, "asnodeadmin -du"):
		u := duRE.FindStringSubmatch(s)[1]
		if _, ok := f.users[u]; ok || u == leftover {
			delete(f.users, u)
			out.WriteString("Deleted user " + u + "\nrc=0\n")
		} else {
			out.WriteString("asnodeadmin: user not found\nrc=1\n")
		}
	}
	return host.Result{Stdout: out.Bytes()}, nil
}

// send answers as the Node API of the node the VIP picks (round robin),
// or of node1 for its own address.
func (f *fakeAPI) send(ctx context.Context, addr string, q apiRequest, who string) (probeAnswer, error) {
	if err := ctx.Err(); err != nil {
		return probeAnswer{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = f.now.Add(20 * time.Millisecond)
	node := "node1"
	if strings.HasPrefix(addr, "10.0.0.9:") {
		node = fakeNodes[f.next%3]
		f.next++
	}
	code, body := f.answer(node, q)
	a := probeAnswer{Code: code, Body: body, At: f.now}
	if who != "" {
		if c, _ := f.answer(node, apiRequest{Method: "GET", Path: "/info", Auth: who}); c == 200 {
			a.Host = "host-" + node
		}
	}
	return a, nil
}

func (f *fakeAPI) answer(node string, q apiRequest) (int, string) {
	if q.Path == "/ping" {
		return 200, ""
	}
	role := ""
	nodeUser := false
	switch {
	case strings.HasPrefix(q.Auth, "Basic "):
		raw, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(q.Auth, "Basic "))
		u, p, _ := strings.Cut(string(raw), ":")
		if pw, ok := f.users[u]; !ok || pw != p {
			return 401, `{"error":{"user_message":"invalid credentials"}}`
		}
		role, nodeUser = "admin", true
	case strings.HasPrefix(q.Auth, "Bearer "):
		tok := strings.TrimPrefix(q.Auth, "Bearer ")
		body, _, _ := strings.Cut(tok, ".")
		raw, _ := base64.RawURLEncoding.DecodeString(body)
		fs := strings.Fields(string(raw))
		refuse := func(why string) (int, string) {
			if f.leakToken {
				why += " " + tok
			}
			return 401, fmt.Sprintf(`{"error":{"user_message":%q}}`, why)
		}
		if len(fs) != 3 || fs[0] != q.AccessKey || !f.keys[fs[0]] || (f.onlyNode != "" && node != f.onlyNode) {
			return refuse("bad token signature")
		}
		exp, _ := time.Parse(tokenTime, fs[2])
		if !f.now.Before(exp) && !f.ignoreExpiry {
			return refuse("token expired at " + fs[2])
		}
		role = fs[1]
	default:
		return 401, `{"error":{"user_message":"authentication required"}}`
	}
	switch {
	case q.Method == "GET" && q.Path == "/info":
		b, _ := json.Marshal(map[string]string{"hostname": "host-" + node, "scope_role": role})
		return 200, string(b)
	case q.Method == "POST" && q.Path == "/access_keys" && node == f.createFails && !nodeUser:
		return 500, `{"error":{"user_message":"database: connection reset"}}`
	case q.Method == "POST" && q.Path == "/access_keys":
		if role != "admin" && !f.userCreates {
			return 403, `{"error":{"user_message":"scope-role user cannot create access keys"}}`
		}
		var k struct{ ID string }
		json.Unmarshal([]byte(q.Body), &k)
		if f.keys[k.ID] {
			return 409, `{"error":{"user_message":"exists"}}`
		}
		f.keys[k.ID] = true
		return 201, "{}"
	case q.Method == "DELETE" && strings.HasPrefix(q.Path, "/access_keys/"):
		id := strings.TrimPrefix(q.Path, "/access_keys/")
		if !nodeUser {
			return 403, "{}"
		}
		if !f.keys[id] {
			return 404, "{}"
		}
		delete(f.keys, id)
		return 204, ""
	}
	return 404, "{}"
}

// bearerChecker is testCluster behind a front end at 10.0.0.9 with the
// bearer options role and bits, its drill on f.
func bearerChecker(f *fakeAPI, role string, bits int, log io.Writer) *bearerDrill {
	cl := testCluster()
	cl.BearerToken = hsts.BearerToken{ScopeRole: role, TokenKeyLength: bits}
	cl.Frontend = &hsts.Frontend{VIP: "10.0.0.9", NodeAPIPort: 9092,
		LoadBalancers: []config.Node{{Name: "lb1", IP: "10.0.0.21"}, {Name: "lb2", IP: "10.0.0.22"}}}
	hosts := map[string]host.Host{}
	for _, n := range cl.Nodes {
		hosts[n.Name] = &fakeBearerNode{name: n.Name, api: f}
	}
	c := &Checker{Cluster: cl, Hosts: hosts, Log: log}
	return &bearerDrill{c: c, expiry: 2 * time.Minute, send: f.send, now: f.clock, sleep: f.sleep}
}

// runBearer runs the drill and returns its report as printed, with the
// progress lines, checking that the token never shows and that nothing
// the drill made is left behind, whatever happened.
func runBearer(t *testing.T, f *fakeAPI, role string, bits int, ctx context.Context) (Report, string) {
	t.Helper()
	var log bytes.Buffer
	d := bearerChecker(f, role, bits, &log)
	r := d.run(ctx)
	r.Write(&log)
	out := log.String()
	if d.token != "" && strings.Contains(out, d.token) {
		t.Errorf("the drill printed the token:\n%s", out)
	}
	if d.pass != "" && strings.Contains(out, d.pass) {
		t.Errorf("the drill printed the test user's password:\n%s", out)
	}
	if len(f.keys) != 0 || len(f.users) != 0 {
		t.Errorf("left behind: access keys %v, node users %v\n%s", f.keys, f.users, out)
	}
	return r, out
}

func TestBearerDrill(t *testing.T) {
	f := newFakeAPI()
	start := f.clock()
	r, out := runBearer(t, f, "user", 2048, context.Background())
	if !r.OK() {
		t.Fatalf("a healthy cluster failed:\n%s", out)
	}
	for _, want := range []string{
		"--scope-role user --token-key-length 2048 --expires-at 2026-01-02T03:06:05.",
		"the token worked through the VIP 10.0.0.9:9092 on every node: GET /info answered by node1 3, node2 3, node3 3 (9 requests, scope_role user)",
		"a user-scope token creating an access key through the VIP: refused by node1 3, node2 3, node3 3 (403)",
		"the expired token was refused through the VIP by every node: node1 ",
		"s after expires-at",
		"cleanup: test access key and node user hastack-check-bearer-",
		"removed the access key " + leftover + " that an earlier run left behind",
		"removed the node user " + leftover,
		"All 5 checks passed.",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in:\n%s", want, out)
		}
	}
	exp, err := time.Parse(tokenTime, f.made["expires-at"])
	if err != nil || exp.Sub(start) < 2*time.Minute || exp.Sub(start) > 2*time.Minute+time.Second {
		t.Errorf("expires-at %q, want 2 min after %v", f.made["expires-at"], start)
	}
	if f.made["access-key"] != f.made["user-id"] || !strings.HasPrefix(f.made["access-key"], bearerPrefix) || f.made["token-key-path"] != `"$k/token-key.pem"` {
		t.Errorf("bearer-create's arguments: %v", f.made)
	}
	// The private key stays on the node, in a folder removed with the script.
	for _, s := range f.scripts {
		if strings.Contains(s, "--bearer-create") && !strings.Contains(s, `trap 'rm -rf "$k"' EXIT`) {
			t.Errorf("the token script does not remove its private key:\n%s", s)
		}
	}
}

func TestBearerDrillAdminScope(t *testing.T) {
	f := newFakeAPI()
	r, out := runBearer(t, f, "", 0, context.Background())
	if !r.OK() || !strings.Contains(out, "--scope-role admin --token-key-length 4096") ||
		!strings.Contains(out, "an admin-scope token creating an access key through the VIP: allowed by node1 3, node2 3, node3 3 (201, 409)") {
		t.Fatalf("an admin-scope token (the defaults):\n%s", out)
	}
}

// Each failure the drill exists for is caught, and cleaned up after.
func TestBearerDrillFailures(t *testing.T) {
	for _, tc := range []struct {
		name  string
		knob  func(f *fakeAPI)
		fails string
	}{
		{"token works on one node only", func(f *fakeAPI) { f.onlyNode = "node2" },
			"the token did not work through the VIP on node1, node3: accepted by node1 0, node2 20, node3 0 in 60 requests; other answers: 20 × 401 from node1: bad token signature; 20 × 401 from node3: bad token signature"},
		{"the refusal quotes the token", func(f *fakeAPI) { f.onlyNode, f.leakToken = "node2", true }, "bad token signature [bearer token]"},
		{"user token creates keys", func(f *fakeAPI) { f.userCreates = true },
			"a user-scope token created access key hastack-check-bearer-"},
		{"a node neither refuses nor creates", func(f *fakeAPI) { f.createFails = "node2" },
			"POST /access_keys with the user-scope token was not refused by node2: refused by node1 20, node2 0, node3 20; other answers: 20 × 500 from node2: database: connection reset"},
		{"expired token accepted", func(f *fakeAPI) { f.ignoreExpiry = true },
			"no refusal of the token through the VIP 10s after it expired at 2026-01-02T03:06:05.080Z: accepted late by node1 "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeAPI()
			tc.knob(f)
			r, out := runBearer(t, f, "user", 2048, context.Background())
			if r.OK() || !strings.Contains(out, tc.fails) || !strings.Contains(out, "cleanup: test access key and node user") {
				t.Fatalf("want a failure %q and the cleanup:\n%s", tc.fails, out)
			}
		})
	}
}

// A node that accepts the token a while after expiry (its clock lags) is
// caught although the others refuse.
func TestBearerDrillLateNode(t *testing.T) {
	f := newFakeAPI()
	d := bearerChecker(f, "user", 2048, io.Discard)
	send := d.send
	d.send = func(ctx context.Context, addr string, q apiRequest, who string) (probeAnswer, error) {
		a, err := send(ctx, addr, q, who)
		f.mu.Lock()
		defer f.mu.Unlock()
		if a.Host == "host-node3" && q.Path == "/info" && strings.HasPrefix(q.Auth, "Bearer ") && a.Code == 401 && f.made != nil {
			exp, _ := time.Parse(tokenTime, f.made["expires-at"])
			if f.now.Before(exp.Add(5 * time.Second)) {
				a.Code, a.Body = 200, `{"hostname":"host-node3","scope_role":"user"}`
			}
		}
		return a, err
	}
	r := d.run(context.Background())
	var b strings.Builder
	r.Write(&b)
	if r.OK() || !strings.Contains(b.String(), "the token was accepted through the VIP more than 2s after it expired: by node1 0, node2 0, node3 ") {
		t.Fatalf("a node accepting the token late:\n%s", b.String())
	}
}

// Ctrl-C while waiting for the token to expire still removes the key and
// the user (with a context of its own).
func TestBearerDrillInterrupted(t *testing.T) {
	f := newFakeAPI()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f.cancelAt, f.cancel = "--bearer-create", cancel
	r, out := runBearer(t, f, "user", 2048, ctx)
	if r.OK() || !strings.Contains(out, "cleanup: test access key and node user") {
		t.Fatalf("interrupted drill:\n%s", out)
	}
}

func TestBearerDrillNeedsFrontend(t *testing.T) {
	f := newFakeAPI()
	d := bearerChecker(f, "user", 2048, nil)
	d.c.Cluster.Frontend = nil
	if r := d.run(context.Background()); r.OK() || len(f.scripts) != 0 || !strings.Contains(r[0].Detail, "no front end") {
		t.Fatalf("without a front end: %v, scripts %v", r, f.scripts)
	}
}

func TestBearerExpiry(t *testing.T) {
	for v, want := range map[string]time.Duration{"": 2 * time.Minute, "30s": 30 * time.Second, "1h": time.Hour, "5s": 0, "2h": 0, "soon": 0} {
		got, err := bearerExpiry(func(string) string { return v })
		if got != want || (err != nil) != (want == 0) {
			t.Errorf("%s=%q: %v %v, want %v", BearerExpiryEnv, v, got, err, want)
		}
	}
}

func TestBearerMask(t *testing.T) {
	d := &bearerDrill{token: "abc.def", pass: "s3cret"}
	got := d.mask("token abc.def pw s3cret key -----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY----- end; cut -----BEGIN PRIVATE KEY-----\nMII")
	if got != "token [bearer token] pw [password] key [private key] end; cut [private key]" {
		t.Errorf("mask: %q", got)
	}
}
