package main

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// A bearer token of the stand-in: base64url(payload) "." base64url(RSA
// PKCS#1 v1.5 SHA-256 signature of the first part). The real token's
// encoding is not documented in the seeds; what is (002's table, the notes)
// is what a verifier needs: it is signed with a private key whose public key
// is stored with the access key, in Redis, and it carries a scope role and
// an expiry.
type tokenPayload struct {
	AccessKey string `json:"access_key"`
	UserID    string `json:"user_id"`
	Scope     string `json:"scope"` // "node.<access key>:<admin|user>"
	ExpiresAt string `json:"expires_at"`
}

// expiresAtRE is 002's "UTC format", 2016-06-23T13:21:58.453Z.
var expiresAtRE = regexp.MustCompile(`^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?Z$`)

func parseExpiresAt(s string) (time.Time, error) {
	if !expiresAtRE.MatchString(s) {
		return time.Time{}, fmt.Errorf("expires-at %q is not a UTC time like 2016-06-23T13:21:58.453Z", s)
	}
	return time.Parse(time.RFC3339Nano, s)
}

// verifyToken checks tok against the access key's token_verification_key
// and returns its role ("admin" or "user").
func verifyToken(tok string, ak *accessKey, now time.Time) (string, error) {
	body, sig, ok := strings.Cut(tok, ".")
	if !ok {
		return "", errors.New("malformed bearer token")
	}
	raw, err := base64.RawURLEncoding.DecodeString(body)
	if err != nil {
		return "", errors.New("malformed bearer token")
	}
	s, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil {
		return "", errors.New("malformed bearer token")
	}
	var p tokenPayload
	if err := json.Unmarshal(raw, &p); err != nil {
		return "", errors.New("malformed bearer token")
	}
	if p.AccessKey != ak.ID {
		return "", errors.New("token is for another access key")
	}
	if ak.TokenKey == "" {
		return "", errors.New("access key has no token_verification_key")
	}
	blk, _ := pem.Decode([]byte(ak.TokenKey))
	if blk == nil {
		return "", errors.New("access key's token_verification_key is not PEM")
	}
	pub, err := x509.ParsePKIXPublicKey(blk.Bytes)
	rpub, ok := pub.(*rsa.PublicKey)
	if err != nil || !ok {
		return "", errors.New("access key's token_verification_key is not an RSA public key")
	}
	h := sha256.Sum256([]byte(body))
	if rsa.VerifyPKCS1v15(rpub, crypto.SHA256, h[:], s) != nil {
		return "", errors.New("bad token signature")
	}
	exp, err := parseExpiresAt(p.ExpiresAt)
	if err != nil {
		return "", err
	}
	if !now.Before(exp) {
		return "", fmt.Errorf("token expired at %s", p.ExpiresAt)
	}
	role, ok := strings.CutPrefix(p.Scope, "node."+ak.ID+":")
	if !ok || (role != "admin" && role != "user") {
		return "", fmt.Errorf("token scope %q is not node.%s:admin or :user", p.Scope, ak.ID)
	}
	return role, nil
}

// bearerCreate is `asnodeadmin --bearer-create` of the stand-in: it makes
// an RSA key pair of --token-key-length bits (002: a power of 2 from 1024 to
// 16384, default 4096), stores the public key as the access key's
// token_verification_key in the cluster's Redis, keeps the private key at
// --token-key-path (0600), and prints a token for --user-id with
// --scope-role (admin, the default, or user) that expires at --expires-at
// (default one hour from now). Run as root on a node, like asnodeadmin.
func bearerCreate(args []string) error {
	fs := flag.NewFlagSet("bearer-create", flag.ContinueOnError)
	akID := fs.String("access-key", "", "access key id")
	userID := fs.String("user-id", "", "user id the token is for")
	role := fs.String("scope-role", "admin", "admin or user")
	bits := fs.Int("token-key-length", 4096, "RSA key length, a power of 2 from 1024 to 16384")
	expires := fs.String("expires-at", "", "UTC time like 2016-06-23T13:21:58.453Z (default: in one hour)")
	keyPath := fs.String("token-key-path", "", "where the private key is written")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *akID == "" || *userID == "" || *keyPath == "" || !filepath.IsAbs(*keyPath) {
		return errors.New("usage: asnodeadmin --bearer-create --access-key ID --user-id USER --token-key-path /ABS/PATH [--scope-role admin|user] [--token-key-length BITS] [--expires-at UTC]")
	}
	if *role != "admin" && *role != "user" {
		return fmt.Errorf("--scope-role %q: want admin or user", *role)
	}
	if *bits < 1024 || *bits > 16384 || *bits&(*bits-1) != 0 {
		return fmt.Errorf("--token-key-length %d: want a power of 2 from 1024 to 16384", *bits)
	}
	exp := time.Now().UTC().Add(time.Hour).Format("2006-01-02T15:04:05.000Z")
	if *expires != "" {
		if _, err := parseExpiresAt(*expires); err != nil {
			return err
		}
		exp = *expires
	}
	c, err := readConf(confPath)
	if err != nil {
		return err
	}
	db, _, err := database(c, redisPassword())
	if err != nil {
		return err
	}
	defer db.Close()
	ak, err := getAccessKey(db, *akID)
	if err != nil {
		return err
	}
	key, err := rsa.GenerateKey(rand.Reader, *bits)
	if err != nil {
		return err
	}
	der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return err
	}
	ak.TokenKey = string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	if err := putAccessKey(db, ak); err != nil {
		return err
	}
	priv := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
	tmp := *keyPath + ".new"
	if err := os.WriteFile(tmp, priv, 0o600); err != nil {
		return err
	}
	if err := os.Rename(tmp, *keyPath); err != nil {
		return err
	}
	p, _ := json.Marshal(tokenPayload{AccessKey: ak.ID, UserID: *userID, Scope: "node." + ak.ID + ":" + *role, ExpiresAt: exp})
	body := base64.RawURLEncoding.EncodeToString(p)
	h := sha256.Sum256([]byte(body))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, h[:])
	if err != nil {
		return err
	}
	fmt.Println(body + "." + base64.RawURLEncoding.EncodeToString(sig))
	return nil
}
