// Command nodeapi is the lab's stand-in for the HSTS Node API (asperanoded):
// a small HTTP (9091) and HTTPS (9092) server whose state, access keys and
// transfers, lives in the cluster's Redis, reached the way aspera.conf says.
// The lab builds it at Up and installs it as /opt/aspera/sbin/asperanoded-lab,
// which the asperanoded stand-in script execs. What each endpoint follows:
// ../README.md. Standard library only: the lab builds it from the embedded
// source with whatever Go is on the machine.
//
//	asperanoded-lab                  serve (the unit's daemon)
//	asperanoded-lab bearer-create …  asnodeadmin --bearer-create (token.go)
package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"strings"
	"time"
)

const (
	confPath     = "/opt/aspera/etc/aspera.conf"
	usersHash    = "aspera:node_users" // asnodeadmin's
	keysHash     = "aspera:access_keys"
	transferHash = "aspera:transfers"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "bearer-create" {
		if err := bearerCreate(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "asnodeadmin:", err)
			os.Exit(1)
		}
		return
	}
	if err := serve(); err != nil {
		fmt.Fprintln(os.Stderr, "asperanoded (lab stand-in):", err)
		os.Exit(1)
	}
}

// server answers the Node API; conf is read once at start, as asperanoded
// reads aspera.conf at start (a change needs a restart).
type server struct {
	conf     conf
	password string
	hostname string
}

func serve() error {
	c, err := readConf(confPath)
	if err != nil {
		return err
	}
	host, _ := os.Hostname()
	s := &server{conf: c, password: redisPassword(), hostname: host}
	cert, err := selfSigned(host)
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /ping", s.ping)
	mux.HandleFunc("GET /info", s.auth(s.info))
	mux.HandleFunc("POST /access_keys", s.auth(s.createKey))
	mux.HandleFunc("GET /access_keys/{id}", s.auth(s.getKey))
	mux.HandleFunc("PUT /access_keys/{id}", s.auth(s.updateKey))
	mux.HandleFunc("DELETE /access_keys/{id}", s.auth(s.deleteKey))
	mux.HandleFunc("POST /ops/transfers", s.auth(s.startTransfer))
	mux.HandleFunc("GET /ops/transfers/{id}", s.auth(s.getTransfer))
	h := s.tag(mux)
	fmt.Printf("Node API (lab stand-in) on %s: http %s, https %s; database: db_type=%q db_host=%q db_port=%q\n",
		host, c.httpPort, c.httpsPort, c.dbType, c.dbHost, c.dbPort)
	errc := make(chan error, 2)
	go func() {
		errc <- (&http.Server{Addr: ":" + c.httpPort, Handler: h, ReadHeaderTimeout: 5 * time.Second}).ListenAndServe()
	}()
	go func() {
		srv := &http.Server{Addr: ":" + c.httpsPort, Handler: h, ReadHeaderTimeout: 5 * time.Second,
			TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}}}
		errc <- srv.ListenAndServeTLS("", "")
	}()
	return <-errc
}

// tag names the node that answered, for tests counting where a request
// behind the load balancer went (not a header of the real Node API).
func (s *server) tag(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Lab-Node", s.hostname)
		h.ServeHTTP(w, r)
	})
}

// ping is the load balancer's health check: 200 with an empty body while
// the daemon runs (it does not ask Redis: a node is not taken out of
// rotation because the shared database is failing over).
func (s *server) ping(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) }

// caller is who a request authenticated as.
type caller struct {
	nodeUser string     // Basic auth as a Node API user (asnodeadmin -au)
	key      *accessKey // Basic auth as an access key, or a bearer token's key
	role     string     // "admin" (node user, access key secret, admin token) or "user"
}

type handler func(w http.ResponseWriter, r *http.Request, db *rconn, who caller)

// auth opens the database and authenticates the request: Basic with a node
// user or an access key id and secret, or "Authorization: Bearer TOKEN" with
// "X-Aspera-AccessKey: ID", the token verified with that access key's
// token_verification_key read from Redis.
func (s *server) auth(next handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		db, _, err := database(s.conf, s.password)
		if err != nil {
			fail(w, http.StatusServiceUnavailable, "database unavailable: "+err.Error())
			return
		}
		defer db.Close()
		var who caller
		if tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
			ak, err := getAccessKey(db, r.Header.Get("X-Aspera-AccessKey"))
			if err != nil {
				fail(w, http.StatusUnauthorized, "bearer token: "+err.Error())
				return
			}
			role, err := verifyToken(strings.TrimSpace(tok), ak, time.Now())
			if err != nil {
				fail(w, http.StatusUnauthorized, err.Error())
				return
			}
			who = caller{key: ak, role: role}
		} else if u, p, ok := r.BasicAuth(); ok {
			if nodeUserOK(db, u, p) {
				who = caller{nodeUser: u, role: "admin"}
			} else if ak, err := getAccessKey(db, u); err == nil && equalHash(ak.SecretSHA256, p) {
				who = caller{key: ak, role: "admin"}
			} else {
				fail(w, http.StatusUnauthorized, "invalid credentials")
				return
			}
		} else {
			w.Header().Set("WWW-Authenticate", `Basic realm="Aspera Node API"`)
			fail(w, http.StatusUnauthorized, "authentication required")
			return
		}
		next(w, r, db, who)
	}
}

func (s *server) info(w http.ResponseWriter, r *http.Request, db *rconn, who caller) {
	out := map[string]any{"version": "lab stand-in", "hostname": s.hostname,
		"current_time": time.Now().UTC().Format(time.RFC3339), "db_type": s.conf.dbType}
	if who.key != nil {
		out["access_key"] = who.key.ID
		out["scope_role"] = who.role
	}
	reply(w, http.StatusOK, out)
}

// accessKey is stored as JSON in Redis hash aspera:access_keys; the
// secret only as its SHA-256.
type accessKey struct {
	ID           string          `json:"id"`
	SecretSHA256 string          `json:"secret_sha256,omitempty"`
	Storage      json.RawMessage `json:"storage,omitempty"`
	TokenKey     string          `json:"token_verification_key,omitempty"`
}

// public is what the API shows of a key: never the secret's hash.
func (k *accessKey) public() map[string]any {
	m := map[string]any{"id": k.ID}
	if len(k.Storage) > 0 {
		m["storage"] = k.Storage
	}
	if k.TokenKey != "" {
		m["token_verification_key"] = k.TokenKey
	}
	return m
}

var errNoKey = errors.New("access key does not exist")

func getAccessKey(db *rconn, id string) (*accessKey, error) {
	if id == "" {
		return nil, errNoKey
	}
	v, err := db.do("HGET", keysHash, id)
	if err == errNil {
		return nil, errNoKey
	}
	if err != nil {
		return nil, err
	}
	var k accessKey
	if err := json.Unmarshal([]byte(fmt.Sprint(v)), &k); err != nil {
		return nil, err
	}
	return &k, nil
}

func putAccessKey(db *rconn, k *accessKey) error {
	b, _ := json.Marshal(k)
	_, err := db.do("HSET", keysHash, k.ID, string(b))
	return err
}

func nodeUserOK(db *rconn, user, pass string) bool {
	v, err := db.do("HGET", usersHash, user)
	if err != nil {
		return false
	}
	var u struct {
		Sum string `json:"password_sha256"`
	}
	return json.Unmarshal([]byte(fmt.Sprint(v)), &u) == nil && equalHash(u.Sum, pass)
}

func equalHash(sum, secret string) bool {
	h := sha256.Sum256([]byte(secret))
	return sum != "" && subtle.ConstantTimeCompare([]byte(sum), []byte(hex.EncodeToString(h[:]))) == 1
}

// createKey: POST /access_keys {id, secret, storage, token_verification_key}.
// Only a node user or an admin-scope caller may; a user-scope token may not
// (002: "user cannot" change the access key configuration).
func (s *server) createKey(w http.ResponseWriter, r *http.Request, db *rconn, who caller) {
	if who.role != "admin" {
		fail(w, http.StatusForbidden, "scope-role user cannot create access keys")
		return
	}
	var in struct {
		ID       string          `json:"id"`
		Secret   string          `json:"secret"`
		Storage  json.RawMessage `json:"storage"`
		TokenKey string          `json:"token_verification_key"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16)).Decode(&in); err != nil || in.ID == "" || in.Secret == "" {
		fail(w, http.StatusBadRequest, "want JSON with id and secret")
		return
	}
	h := sha256.Sum256([]byte(in.Secret))
	k := &accessKey{ID: in.ID, SecretSHA256: hex.EncodeToString(h[:]), Storage: in.Storage, TokenKey: in.TokenKey}
	b, _ := json.Marshal(k)
	v, err := db.do("HSETNX", keysHash, k.ID, string(b))
	if err != nil {
		fail(w, http.StatusServiceUnavailable, "database: "+err.Error())
		return
	}
	if v == "0" {
		fail(w, http.StatusConflict, "access key "+k.ID+" already exists")
		return
	}
	reply(w, http.StatusCreated, k.public())
}

// keyFor finds the access key {id} and says whether who may see it: a node
// user any key, an access key (or its tokens) only itself.
func keyFor(w http.ResponseWriter, r *http.Request, db *rconn, who caller) (*accessKey, bool) {
	id := r.PathValue("id")
	if who.key != nil && who.key.ID != id {
		fail(w, http.StatusForbidden, "not this access key's")
		return nil, false
	}
	k, err := getAccessKey(db, id)
	if err == errNoKey {
		fail(w, http.StatusNotFound, "access key "+id+" does not exist")
		return nil, false
	}
	if err != nil {
		fail(w, http.StatusServiceUnavailable, "database: "+err.Error())
		return nil, false
	}
	return k, true
}

func (s *server) getKey(w http.ResponseWriter, r *http.Request, db *rconn, who caller) {
	if k, ok := keyFor(w, r, db, who); ok {
		reply(w, http.StatusOK, k.public())
	}
}

// updateKey: PUT /access_keys/{id} {storage, token_verification_key};
// admin only.
func (s *server) updateKey(w http.ResponseWriter, r *http.Request, db *rconn, who caller) {
	if who.role != "admin" {
		fail(w, http.StatusForbidden, "scope-role user cannot change the access key configuration")
		return
	}
	k, ok := keyFor(w, r, db, who)
	if !ok {
		return
	}
	var in struct {
		Storage  json.RawMessage `json:"storage"`
		TokenKey *string         `json:"token_verification_key"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16)).Decode(&in); err != nil {
		fail(w, http.StatusBadRequest, "want JSON")
		return
	}
	if len(in.Storage) > 0 {
		k.Storage = in.Storage
	}
	if in.TokenKey != nil {
		k.TokenKey = *in.TokenKey
	}
	if err := putAccessKey(db, k); err != nil {
		fail(w, http.StatusServiceUnavailable, "database: "+err.Error())
		return
	}
	reply(w, http.StatusOK, k.public())
}

func (s *server) deleteKey(w http.ResponseWriter, r *http.Request, db *rconn, who caller) {
	if who.nodeUser == "" {
		fail(w, http.StatusForbidden, "only a node user deletes access keys")
		return
	}
	if v, err := db.do("HDEL", keysHash, r.PathValue("id")); err != nil || v != "1" {
		fail(w, http.StatusNotFound, "access key "+r.PathValue("id")+" does not exist")
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// startTransfer: POST /ops/transfers with a transfer spec records a
// transfer (the stand-in moves no data) as running, on this node.
func (s *server) startTransfer(w http.ResponseWriter, r *http.Request, db *rconn, who caller) {
	var spec json.RawMessage
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16)).Decode(&spec); err != nil {
		fail(w, http.StatusBadRequest, "want a JSON transfer spec")
		return
	}
	id := make([]byte, 16)
	rand.Read(id)
	t := map[string]any{"id": hex.EncodeToString(id), "status": "running", "start_spec": spec,
		"start_time": time.Now().UTC().Format(time.RFC3339), "started_on": s.hostname}
	b, _ := json.Marshal(t)
	if _, err := db.do("HSET", transferHash, t["id"].(string), string(b)); err != nil {
		fail(w, http.StatusServiceUnavailable, "database: "+err.Error())
		return
	}
	reply(w, http.StatusCreated, t)
}

// getTransfer: GET /ops/transfers/{id}, or 404 "... does not exist": seed
// 000's symptom when the node asked keeps its own Redis.
func (s *server) getTransfer(w http.ResponseWriter, r *http.Request, db *rconn, who caller) {
	id := r.PathValue("id")
	v, err := db.do("HGET", transferHash, id)
	if err == errNil {
		fail(w, http.StatusNotFound, "transfer "+id+" does not exist")
		return
	}
	if err != nil {
		fail(w, http.StatusServiceUnavailable, "database: "+err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	fmt.Fprintln(w, v)
}

func reply(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

// fail answers in the Node API's error shape.
func fail(w http.ResponseWriter, code int, msg string) {
	reply(w, code, map[string]any{"error": map[string]any{"code": code, "reason": http.StatusText(code), "user_message": msg}})
}

// selfSigned is the node's HTTPS certificate, made at start: HSTS installs
// a self-signed one per node too.
func selfSigned(host string) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	tpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: host},
		DNSNames:     []string{host},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * 365 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tpl, tpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}
