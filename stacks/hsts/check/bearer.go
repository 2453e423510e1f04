package check

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"hastack.dev/hastack/internal/host"
	"hastack.dev/hastack/modules"
	"hastack.dev/hastack/modules/redis"
)

// The bearer drill (issue 11 point 3, 002's option table): through one HSTS
// node, a throwaway Node API user and access key and a bearer token made
// with the config's bearerToken options; the token used through the VIP
// until every node answered; a user-scope token refused an access key; the
// token refused once expired; the user and key deleted on every way out.
// docs/frontend.md#bearer-drill.

// bearerPrefix names the drill's node user and access key.
const bearerPrefix = drillPrefix + "bearer-"

// BearerExpiryEnv sets the drill token's lifetime, a Go duration from
// minBearerExpiry to maxBearerExpiry; the drill waits that long for it
// to expire.
const BearerExpiryEnv = "HASTACK_BEARER_DRILL_EXPIRY"

const (
	defaultBearerExpiry = 2 * time.Minute // issue 11: expires-at 2 minutes ahead
	minBearerExpiry     = 10 * time.Second
	maxBearerExpiry     = time.Hour // 002's default lifetime
	// expiryGrace is how late after expires-at a node may still accept the
	// token (clock skew, the request in flight) before the drill fails.
	expiryGrace = 2 * time.Second
	// refusalWait bounds the wait for a first refusal after expires-at.
	refusalWait = 10 * time.Second
	// probeTimeout bounds one probe (connection, TLS, two requests).
	probeTimeout = 10 * time.Second
	// vipWait bounds the wait for the VIP to answer /ping before anything
	// is created.
	vipWait = 15 * time.Second
	// nobodyHome is the storage of the drill's access key: nobody's home,
	// which Debian does not create, so the token reaches no file.
	nobodyHome = "/nonexistent"
)

// bearerExpiry reads BearerExpiryEnv.
func bearerExpiry(getenv func(string) string) (time.Duration, error) {
	v := getenv(BearerExpiryEnv)
	if v == "" {
		return defaultBearerExpiry, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < minBearerExpiry || d > maxBearerExpiry {
		return 0, fmt.Errorf("%s=%q: want a duration from %v to %v", BearerExpiryEnv, v, minBearerExpiry, maxBearerExpiry)
	}
	return d, nil
}

// BearerDrill runs the bearer drill with the lifetime BearerExpiryEnv sets.
func (c *Checker) BearerDrill(ctx context.Context) Report {
	exp, err := bearerExpiry(os.Getenv)
	if err != nil {
		return Report{{Check: "bearer", Detail: err.Error()}}
	}
	d := &bearerDrill{c: c, expiry: exp, now: time.Now, sleep: sleepCtx}
	d.send = d.dialSend
	return d.run(ctx)
}

// apiRequest is one Node API request; Auth is the Authorization header.
type apiRequest struct {
	Method, Path, Body string
	Auth, AccessKey    string
}

// probeAnswer is one request's answer and who gave it.
type probeAnswer struct {
	Code int // 0: no answer (Body says why)
	Body string
	// Host is the answering node's hostname, from GET /info sent after the
	// request on the same connection (HAProxy balances connections): ""
	// when unknown.
	Host string
	At   time.Time // when the answer came
}

type bearerDrill struct {
	c      *Checker
	expiry time.Duration
	// send sends q to addr over one new TLS connection opened from the
	// drill's node, then, when who is set, GET /info with Authorization
	// who on the same connection to learn the answering node's hostname.
	send  func(ctx context.Context, addr string, q apiRequest, who string) (probeAnswer, error)
	now   func() time.Time
	sleep func(ctx context.Context, d time.Duration) error

	via      string            // the node the drill makes things on and reaches the VIP from
	nodeAPI  string            // via's own Node API, host:port
	vipAPI   string            // the VIP's
	hostNode map[string]string // hostname → node name
	skew     map[string]time.Duration
	id, pass string // node user and access key id; the user's password
	basic    string // Authorization for the node user
	token    string // never printed: mask
	r        Report
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

func (d *bearerDrill) add(node string, ok bool, format string, args ...any) bool {
	d.r = append(d.r, Result{Node: node, Check: "bearer", OK: ok, Detail: d.mask(fmt.Sprintf(format, args...))})
	return ok
}

var pemRE = regexp.MustCompile(`(?s)-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(-----END [A-Z ]*PRIVATE KEY-----|$)`)

// mask removes the token and any private key from s: the drill never
// prints them, even in a node's error message.
func (d *bearerDrill) mask(s string) string {
	if d.token != "" {
		s = strings.ReplaceAll(s, d.token, "[bearer token]")
	}
	if d.pass != "" {
		s = strings.ReplaceAll(s, d.pass, "[password]")
	}
	return pemRE.ReplaceAllString(s, "[private key]")
}

func (d *bearerDrill) logf(format string, args ...any) {
	d.c.logf("%s", d.mask(fmt.Sprintf("bearer: "+format, args...)))
}

// run runs the drill; its report ends with the cleanup's result.
func (d *bearerDrill) run(ctx context.Context) Report {
	d.drill(ctx)
	return d.r
}

func (d *bearerDrill) drill(ctx context.Context) {
	cl := d.c.Cluster
	f := cl.Frontend
	if f == nil {
		d.add("", false, "the cluster has no front end: the drill uses the token through its VIP (frontend:)")
		return
	}
	role, bits := cl.BearerToken.ScopeRole, cl.BearerToken.TokenKeyLength
	if role == "" {
		role = "admin"
	}
	if bits == 0 {
		bits = 4096
	}
	port := strconv.Itoa(f.NodeAPIPort)
	if f.NodeAPIPort == 0 {
		port = "9092"
	}
	d.via = cl.Nodes[0].Name
	d.nodeAPI = net.JoinHostPort(cl.Nodes[0].IP, port)
	d.vipAPI = net.JoinHostPort(f.VIP, port)
	var rnd [6]byte
	rand.Read(rnd[:])
	d.id = bearerPrefix + hex.EncodeToString(rnd[:])
	var pw [12]byte
	rand.Read(pw[:])
	d.pass = hex.EncodeToString(pw[:]) // the throwaway user's, not the cluster's
	d.basic = "Basic " + basicAuth(d.id, d.pass)

	if !d.hostnames(ctx) || !d.vipUp(ctx) {
		return
	}
	// From here the user may exist: an interrupted add may have added it.
	defer d.cleanup(ctx)
	if !d.setup(ctx) {
		return
	}
	exp := d.now().Add(d.expiry).UTC().Truncate(time.Millisecond)
	if !d.makeToken(ctx, role, bits, exp) {
		return
	}
	if !d.accepted(ctx, role, exp) || !d.keyCreation(ctx, role, exp) {
		return
	}
	d.expired(ctx, exp)
	return
}

func basicAuth(user, pass string) string {
	r, _ := http.NewRequest("GET", "http://x/", nil)
	r.SetBasicAuth(user, pass)
	return strings.TrimPrefix(r.Header.Get("Authorization"), "Basic ")
}

// hostnames maps each HSTS node's hostname (what /info answers) to its
// name and reads its clock against this machine's.
func (d *bearerDrill) hostnames(ctx context.Context) bool {
	d.hostNode = map[string]string{}
	d.skew = map[string]time.Duration{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	ok := true
	for _, n := range d.c.Cluster.Nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t0 := d.now()
			res, err := d.run1(ctx, n.Name, "uname -n; date -u +%s.%N\n")
			t1 := d.now()
			fs := strings.Fields(res)
			mu.Lock()
			defer mu.Unlock()
			if err != nil || len(fs) != 2 {
				ok = d.add(n.Name, false, "cannot read its hostname and clock: %v %s", err, res)
				return
			}
			if other, dup := d.hostNode[fs[0]]; dup {
				ok = d.add(n.Name, false, "has the hostname %s of %s: the Node API's answers cannot be told apart", fs[0], other)
				return
			}
			d.hostNode[fs[0]] = n.Name
			if secs, err := strconv.ParseFloat(fs[1], 64); err == nil {
				mid := t0.Add(t1.Sub(t0) / 2)
				d.skew[n.Name] = time.Unix(0, int64(secs*1e9)).Sub(mid)
			}
		}()
	}
	wg.Wait()
	return ok
}

// run1 runs a short command line on node and returns its output.
func (d *bearerDrill) run1(ctx context.Context, node, script string) (string, error) {
	h := d.c.Hosts[node]
	if h == nil {
		return "", fmt.Errorf("no connection to %s", node)
	}
	res, err := h.Run(ctx, "sh -s", strings.NewReader(script))
	if err == nil && res.Code != 0 {
		err = fmt.Errorf("exit %d: %s", res.Code, strings.TrimSpace(string(res.Stderr)))
	}
	return string(res.Stdout), err
}

// vipUp waits until the VIP answers GET /ping (no auth): nothing is made
// for a drill that cannot reach it.
func (d *bearerDrill) vipUp(ctx context.Context) bool {
	deadline := d.now().Add(vipWait)
	for {
		a, err := d.send(ctx, d.vipAPI, apiRequest{Method: "GET", Path: "/ping"}, "")
		if err == nil && a.Code == 200 {
			return true
		}
		if d.now().After(deadline) || ctx.Err() != nil {
			why := a.Body
			if err != nil {
				why = err.Error()
			}
			return d.add("", false, "the Node API does not answer GET /ping through the VIP %s from %s after %v: %d %s", d.vipAPI, d.via, vipWait, a.Code, firstLine(why))
		}
		if d.sleep(ctx, 500*time.Millisecond) != nil {
			return d.add("", false, "interrupted waiting for the VIP")
		}
	}
}

// setup removes what a killed earlier drill left behind (its users and
// keys, by bearerPrefix; private-key folders) and adds the drill's node
// user, mapped to drillAccount. The password travels in the script on
// stdin; asnodeadmin takes it as -p (replication.go's addUser says why
// that is acceptable), then the access key is made with it through via's
// own Node API.
func (d *bearerDrill) setup(ctx context.Context) bool {
	b := newBoundary()
	script := fmt.Sprintf(`PATH=%[1]s
echo '%[2]s leftover'
asnodeadmin -l </dev/null 2>/dev/null | grep -o '%[3]s[0-9a-f]*' | sort -u
find /tmp -maxdepth 1 -name 'hastack-check-bearer.*' -user 0 -exec rm -rf {} + 2>/dev/null
echo '%[2]s add'
pw=%[4]s
asnodeadmin -au %[5]s -p "$pw" -x %[6]s </dev/null 2>&1
echo '%[2]s=rc' $?
echo '%[2]s end'
`, redis.PATH, b, bearerPrefix, modules.Quote(d.pass), modules.Quote(d.id), drillAccount)
	out, err := d.runScript(ctx, d.via, script)
	s := parseSections([]byte(out), b)
	if err != nil || !s["end"].seen || s["add"].rc != 0 {
		return d.add(d.via, false, "asnodeadmin -au %s failed: %v %s", d.id, err, strings.TrimSpace(s["add"].body))
	}
	for _, old := range strings.Fields(s["leftover"].body) {
		d.removeLeftover(ctx, old)
	}
	body, _ := json.Marshal(map[string]any{"id": d.id, "secret": d.pass, "storage": map[string]string{"type": "local", "path": nobodyHome}})
	a, err := d.send(ctx, d.nodeAPI, apiRequest{Method: "POST", Path: "/access_keys", Body: string(body), Auth: d.basic}, "")
	if err != nil || a.Code != 201 {
		return d.add(d.via, false, "POST /access_keys %s on %s's Node API (%s) as node user %s: %s", d.id, d.via, d.nodeAPI, d.id, answerText(a, err))
	}
	d.logf("test node user and access key %s made on %s (system user %s, storage %s)", d.id, d.via, drillAccount, nobodyHome)
	return true
}

// removeLeftover deletes an earlier drill's access keys and node user.
func (d *bearerDrill) removeLeftover(ctx context.Context, old string) {
	if old == d.id {
		return
	}
	for _, k := range []string{old + "-new", old} {
		a, err := d.send(ctx, d.nodeAPI, apiRequest{Method: "DELETE", Path: "/access_keys/" + k, Auth: d.basic}, "")
		if err == nil && a.Code/100 == 2 {
			d.logf("removed the access key %s that an earlier run left behind", k)
		}
	}
	if _, err := d.runScript(ctx, d.via, "PATH="+redis.PATH+"\nasnodeadmin -du "+modules.Quote(old)+" </dev/null >/dev/null 2>&1\n"); err == nil {
		d.logf("removed the node user %s that an earlier run left behind", old)
	}
}

func (d *bearerDrill) runScript(ctx context.Context, node, script string) (string, error) {
	h := d.c.Hosts[node]
	if h == nil {
		return "", fmt.Errorf("no connection to %s", node)
	}
	res, err := h.Run(ctx, "sh -s", strings.NewReader(script))
	return string(res.Stdout), err
}

// tokenTime is 002's UTC form, 2016-06-23T13:21:58.453Z.
const tokenTime = "2006-01-02T15:04:05.000Z"

// makeToken runs asnodeadmin --bearer-create on via with the config's
// options and the drill's expiry. The private key is written to a fresh
// root-only folder and removed when the script ends (or is cut off): the
// drill needs only the token, which it keeps in memory.
func (d *bearerDrill) makeToken(ctx context.Context, role string, bits int, exp time.Time) bool {
	b := newBoundary()
	script := fmt.Sprintf(`PATH=%[1]s
umask 077
k=$(mktemp -d /tmp/hastack-check-bearer.XXXXXX) || exit 1
trap 'rm -rf "$k"' EXIT
trap 'rm -rf "$k"; exit 1' HUP INT TERM
tok=$(asnodeadmin --bearer-create --access-key %[3]s --user-id %[3]s --scope-role %[4]s --token-key-length %[5]d --expires-at %[6]s --token-key-path "$k/token-key.pem" </dev/null 2>"$k/err")
rc=$?
echo '%[2]s token'
printf '%%s\n' "$tok"
echo '%[2]s err'
head -c 2000 "$k/err"
echo '%[2]s=rc' $rc
echo '%[2]s end'
`, redis.PATH, b, modules.Quote(d.id), modules.Quote(role), bits, exp.Format(tokenTime))
	start := d.now()
	out, err := d.runScript(ctx, d.via, script)
	took := d.now().Sub(start)
	s := parseSections([]byte(out), b)
	d.token = strings.TrimSpace(s["token"].body)
	if err != nil || !s["end"].seen || s["err"].rc != 0 || d.token == "" || strings.ContainsAny(d.token, " \n") {
		return d.add(d.via, false, "asnodeadmin --bearer-create --scope-role %s --token-key-length %d --expires-at %s failed: %v %s",
			role, bits, exp.Format(tokenTime), err, strings.TrimSpace(s["err"].body))
	}
	return d.add(d.via, true, "token for access key %s: --scope-role %s --token-key-length %d --expires-at %s (in %v), made in %.1fs; its private key removed from %s",
		d.id, role, bits, exp.Format(tokenTime), d.expiry, took.Seconds(), d.via)
}

func (d *bearerDrill) bearer() string { return "Bearer " + d.token }

// spread sends q through the VIP, counting answers by node, until every
// node answered it as good says (at least 3 rounds), at most 20 rounds.
func (d *bearerDrill) spread(ctx context.Context, q func(i int) apiRequest, good func(a probeAnswer) bool) []probeAnswer {
	n := len(d.c.Cluster.Nodes)
	var as []probeAnswer
	for i := 0; i < 20*n && ctx.Err() == nil; i++ {
		a, err := d.send(ctx, d.vipAPI, q(i), d.basic)
		if err != nil {
			a.Code, a.Body = 0, err.Error()
		}
		as = append(as, a)
		if i+1 >= 3*n && len(d.nodesWhere(as, good)) == n {
			break
		}
	}
	return as
}

// nodesWhere is the set of nodes with an answer good says.
func (d *bearerDrill) nodesWhere(as []probeAnswer, good func(a probeAnswer) bool) map[string]int {
	m := map[string]int{}
	for _, a := range as {
		if node := d.hostNode[a.Host]; node != "" && good(a) {
			m[node]++
		}
	}
	return m
}

// counts prints m in the config's node order, with 0 for the missing.
func (d *bearerDrill) counts(m map[string]int) string {
	var s []string
	for _, n := range d.c.Cluster.Nodes {
		s = append(s, fmt.Sprintf("%s %d", n.Name, m[n.Name]))
	}
	return strings.Join(s, ", ")
}

func (d *bearerDrill) missing(m map[string]int) []string {
	var out []string
	for _, n := range d.c.Cluster.Nodes {
		if m[n.Name] == 0 {
			out = append(out, n.Name)
		}
	}
	return out
}

// others summarises answers good does not accept: code, node, first line.
func (d *bearerDrill) others(as []probeAnswer, good func(a probeAnswer) bool) string {
	seen := map[string]int{}
	var order []string
	for _, a := range as {
		if good(a) {
			continue
		}
		node := d.hostNode[a.Host]
		if node == "" {
			node = "unknown node"
		}
		k := fmt.Sprintf("%d from %s: %s", a.Code, node, firstLine(errorMessage(a.Body)))
		if seen[k] == 0 {
			order = append(order, k)
		}
		seen[k]++
	}
	sort.Strings(order)
	var s []string
	for _, k := range order {
		s = append(s, fmt.Sprintf("%d × %s", seen[k], k))
	}
	return strings.Join(s, "; ")
}

func refused(a probeAnswer) bool { return a.Code == 401 || a.Code == 403 }

// accepted uses the token through the VIP until every node accepted it
// (GET /info, whose scope_role must be the token's).
func (d *bearerDrill) accepted(ctx context.Context, role string, exp time.Time) bool {
	good := func(a probeAnswer) bool {
		var info struct {
			Role *string `json:"scope_role"`
		}
		return a.Code == 200 && json.Unmarshal([]byte(a.Body), &info) == nil && (info.Role == nil || *info.Role == role) && a.At.Before(exp)
	}
	as := d.spread(ctx, func(int) apiRequest {
		return apiRequest{Method: "GET", Path: "/info", Auth: d.bearer(), AccessKey: d.id}
	}, good)
	ok := d.nodesWhere(as, good)
	if miss := d.missing(ok); len(miss) > 0 {
		return d.add("", false, "the token did not work through the VIP on %s: accepted by %s in %d requests; other answers: %s",
			strings.Join(miss, ", "), d.counts(ok), len(as), d.others(as, good))
	}
	return d.add("", true, "the token worked through the VIP %s on every node: GET /info answered by %s (%d requests, scope_role %s)",
		d.vipAPI, d.counts(ok), len(as), role)
}

// keyCreation tries to create an access key with the token through the
// VIP: a user-scope token must be refused by every node (002: "user
// cannot" change the access key configuration), an admin one allowed. A
// 409 (the key exists) counts as allowed: the scope let it through.
func (d *bearerDrill) keyCreation(ctx context.Context, role string, exp time.Time) bool {
	newID := d.id + "-new"
	body, _ := json.Marshal(map[string]any{"id": newID, "secret": d.pass, "storage": map[string]string{"type": "local", "path": nobodyHome}})
	allowed := func(a probeAnswer) bool { return a.Code/100 == 2 || a.Code == 409 }
	want, what := refused, "refused"
	if role == "admin" {
		want, what = allowed, "allowed"
	}
	as := d.spread(ctx, func(int) apiRequest {
		return apiRequest{Method: "POST", Path: "/access_keys", Body: string(body), Auth: d.bearer(), AccessKey: d.id}
	}, want)
	ok := d.nodesWhere(as, want)
	for _, a := range as {
		if !a.At.Before(exp) {
			return d.add("", false, "the token expired before it was tried on every node: make %s longer than %v", BearerExpiryEnv, d.expiry)
		}
	}
	if role == "user" {
		if bad := d.nodesWhere(as, allowed); len(bad) > 0 {
			return d.add("", false, "a user-scope token created access key %s through the VIP: allowed by %s (002: user cannot change access keys)", newID, d.counts(bad))
		}
	}
	if miss := d.missing(ok); len(miss) > 0 {
		return d.add("", false, "POST /access_keys with the %s-scope token was not %s by %s: %s by %s; other answers: %s",
			role, what, strings.Join(miss, ", "), what, d.counts(ok), d.others(as, want))
	}
	article := "a"
	if role == "admin" {
		article = "an"
	}
	return d.add("", true, "%s %s-scope token creating an access key through the VIP: %s by %s (%s)", article, role, what, d.counts(ok), codes(as, want))
}

// codes lists the distinct status codes of the answers good accepts.
func codes(as []probeAnswer, good func(a probeAnswer) bool) string {
	seen := map[int]bool{}
	var s []string
	for _, a := range as {
		if good(a) && !seen[a.Code] {
			seen[a.Code] = true
			s = append(s, strconv.Itoa(a.Code))
		}
	}
	return strings.Join(s, ", ")
}

// expired waits for expires-at, polls until the first refusal (the time
// from expires-at to it is the figure), then goes on until every node
// refused; a node accepting the token later than expiryGrace after
// expires-at fails, as does one not refusing it refusalWait after.
func (d *bearerDrill) expired(ctx context.Context, exp time.Time) bool {
	d.logf("waiting for the token to expire at %s (%v from now)", exp.Format(tokenTime), exp.Sub(d.now()).Round(time.Second))
	if err := d.sleep(ctx, exp.Add(-time.Second).Sub(d.now())); err != nil {
		return d.add("", false, "interrupted waiting for the token to expire")
	}
	q := func(int) apiRequest {
		return apiRequest{Method: "GET", Path: "/info", Auth: d.bearer(), AccessKey: d.id}
	}
	// Until the first refusal, every 100 ms.
	var as []probeAnswer
	var first time.Time
	for first.IsZero() {
		if d.now().After(exp.Add(refusalWait)) {
			return d.add("", false, "no refusal of the token through the VIP %v after it expired at %s: accepted late by %s; answers: %s",
				refusalWait, exp.Format(tokenTime), d.counts(d.nodesWhere(as, lateAccept(exp))), d.others(as, refused))
		}
		a, err := d.send(ctx, d.vipAPI, q(0), d.basic)
		if err != nil {
			a.Code, a.Body = 0, err.Error()
		}
		if ctx.Err() != nil {
			return d.add("", false, "interrupted waiting for the token to be refused")
		}
		as = append(as, a)
		if refused(a) {
			first = a.At
			break
		}
		d.sleep(ctx, 100*time.Millisecond)
	}
	// Then until every node refused (a node whose clock lags may accept it
	// a little longer), every 50 ms, up to refusalWait after expires-at.
	n := len(d.c.Cluster.Nodes)
	for i := 0; ctx.Err() == nil; i++ {
		if i >= 3*n && len(d.nodesWhere(as, refused)) == n || d.now().After(exp.Add(refusalWait)) {
			break
		}
		d.sleep(ctx, 50*time.Millisecond)
		a, err := d.send(ctx, d.vipAPI, q(0), d.basic)
		if err != nil {
			a.Code, a.Body = 0, err.Error()
		}
		as = append(as, a)
	}
	ok := d.nodesWhere(as, refused)
	late := d.nodesWhere(as, lateAccept(exp))
	skews := d.skews()
	if len(late) > 0 {
		return d.add("", false, "the token was accepted through the VIP more than %v after it expired: by %s%s", expiryGrace, d.counts(late), skews)
	}
	if miss := d.missing(ok); len(miss) > 0 {
		return d.add("", false, "the expired token was not refused by %s: refused by %s; other answers: %s%s",
			strings.Join(miss, ", "), d.counts(ok), d.others(as, refused), skews)
	}
	return d.add("", true, "the expired token was refused through the VIP by every node: %s (%s); first refusal %.2fs after expires-at%s",
		d.counts(ok), codes(as, refused), first.Sub(exp).Seconds(), skews)
}

// lateAccept is an answer accepting the token later than expiryGrace
// after exp.
func lateAccept(exp time.Time) func(a probeAnswer) bool {
	return func(a probeAnswer) bool { return a.Code == 200 && a.At.After(exp.Add(expiryGrace)) }
}

// skews names the nodes whose clock is more than half a second off this
// machine's: expiry is each node's own clock's.
func (d *bearerDrill) skews() string {
	var s []string
	for _, n := range d.c.Cluster.Nodes {
		if k := d.skew[n.Name]; k > 500*time.Millisecond || k < -500*time.Millisecond {
			s = append(s, fmt.Sprintf("%s %+.1fs", n.Name, k.Seconds()))
		}
	}
	if len(s) == 0 {
		return ""
	}
	return "; clocks against this machine's: " + strings.Join(s, ", ")
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return s
}

// errorMessage is the Node API error's user_message, or body.
func errorMessage(body string) string {
	var e struct {
		Error struct {
			Message string `json:"user_message"`
		} `json:"error"`
	}
	if json.Unmarshal([]byte(body), &e) == nil && e.Error.Message != "" {
		return e.Error.Message
	}
	return body
}

func answerText(a probeAnswer, err error) string {
	if err != nil {
		return err.Error()
	}
	return fmt.Sprintf("%d %s", a.Code, firstLine(errorMessage(a.Body)))
}

// cleanup deletes the drill's access keys and node user on via, with a
// fresh context when ctx is done (Ctrl-C), and reports it.
func (d *bearerDrill) cleanup(ctx context.Context) {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	var bad []string
	for _, k := range []string{d.id + "-new", d.id} {
		a, err := d.send(cctx, d.nodeAPI, apiRequest{Method: "DELETE", Path: "/access_keys/" + k, Auth: d.basic}, "")
		if err != nil || (a.Code/100 != 2 && a.Code != 404) {
			bad = append(bad, fmt.Sprintf("DELETE /access_keys/%s: %s", k, answerText(a, err)))
		}
	}
	out, err := d.runScript(cctx, d.via, "PATH="+redis.PATH+"\nasnodeadmin -du "+modules.Quote(d.id)+" </dev/null 2>&1\necho rc=$?\n")
	if err != nil || !strings.Contains(out, "rc=0") {
		bad = append(bad, fmt.Sprintf("asnodeadmin -du %s: %v %s", d.id, err, strings.TrimSpace(out)))
	}
	if len(bad) > 0 {
		d.add(d.via, false, "cleanup: %s", strings.Join(bad, "; "))
		return
	}
	d.add(d.via, true, "cleanup: test access key and node user %s deleted", d.id)
}

// dialSend is send over a TCP connection opened from via (SSH
// direct-tcpip): the VIP is reached from the cluster's network, as a
// client there would. The certificate is not verified: each node's is its
// own self-signed one (the front end passes TLS through), and the drill
// sends only its throwaway credentials.
func (d *bearerDrill) dialSend(ctx context.Context, addr string, q apiRequest, who string) (probeAnswer, error) {
	dl, ok := d.c.Hosts[d.via].(host.Dialer)
	if !ok {
		return probeAnswer{}, fmt.Errorf("the connection to %s opens no TCP connections", d.via)
	}
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	conn, err := modules.DialTCP(ctx, dl, addr)
	if err != nil {
		return probeAnswer{}, err
	}
	defer conn.Close()
	if t, ok := ctx.Deadline(); ok {
		conn.SetDeadline(t)
	}
	hostname, _, _ := net.SplitHostPort(addr)
	tc := tls.Client(conn, &tls.Config{InsecureSkipVerify: true, ServerName: hostname})
	br := bufio.NewReader(tc)
	var a probeAnswer
	a.Code, a.Body, err = roundTrip(ctx, tc, br, addr, q, who == "")
	a.At = d.now()
	if err != nil || who == "" {
		return a, err
	}
	code, body, err := roundTrip(ctx, tc, br, addr, apiRequest{Method: "GET", Path: "/info", Auth: who}, true)
	var info struct {
		Hostname string `json:"hostname"`
	}
	if err == nil && code == 200 && json.Unmarshal([]byte(body), &info) == nil {
		a.Host = info.Hostname
	}
	return a, nil
}

// roundTrip writes q on c and reads its answer (64 KiB at most).
func roundTrip(ctx context.Context, c io.Writer, br *bufio.Reader, addr string, q apiRequest, last bool) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, q.Method, "https://"+addr+q.Path, strings.NewReader(q.Body))
	if err != nil {
		return 0, "", err
	}
	if q.Body == "" {
		req.Body, req.ContentLength = nil, 0
	} else {
		req.Header.Set("Content-Type", "application/json")
	}
	if q.Auth != "" {
		req.Header.Set("Authorization", q.Auth)
	}
	if q.AccessKey != "" {
		req.Header.Set("X-Aspera-AccessKey", q.AccessKey)
	}
	req.Close = last
	if err := req.Write(c); err != nil {
		return 0, "", err
	}
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return 0, "", err
	}
	io.Copy(io.Discard, resp.Body) // the next request shares the connection
	return resp.StatusCode, string(b), nil
}
