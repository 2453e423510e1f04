package sshconn

import (
	"context"
	"sync"

	"golang.org/x/crypto/ssh"
)

// jumpPool holds the run's connections to jump hosts (ProxyJump), so that
// a bastion is logged in to once however many nodes sit behind it: every
// node's SSH connection is a channel (direct-tcpip) of that one
// connection. A chain a,b shares its connection to a with every other
// chain through a. A connection is closed when the last node using it is.
type jumpPool struct {
	mu sync.Mutex
	m  map[string]*jumpConn
}

type jumpConn struct {
	ready   chan struct{} // closed once client or err is set
	client  *ssh.Client
	err     error
	refs    int
	release func() // lets go of the hop before this one
	done    chan struct{}
}

func newJumpPool() *jumpPool { return &jumpPool{m: map[string]*jumpConn{}} }

// client returns the connection to hop (reached through hop.hops), making
// it if no node has yet, and the function that lets go of it.
func (p *jumpPool) client(ctx context.Context, hop *endpoint, c Config) (*ssh.Client, func(), error) {
	key := hop.key()
	p.mu.Lock()
	j, ok := p.m[key]
	if !ok {
		j = &jumpConn{ready: make(chan struct{}), done: make(chan struct{})}
		p.m[key] = j
	}
	j.refs++
	p.mu.Unlock()
	if !ok {
		j.client, j.release, j.err = p.dial(ctx, hop, c)
		if j.err == nil && hop.cfg.KeepAlive > 0 {
			go keepAlive(j.client, hop.cfg.KeepAlive, j.done)
		}
		close(j.ready)
	}
	select {
	case <-j.ready:
	case <-ctx.Done():
		p.put(key, j)
		return nil, nil, context.Cause(ctx)
	}
	if j.err != nil {
		p.put(key, j)
		return nil, nil, j.err
	}
	var once sync.Once
	return j.client, func() { once.Do(func() { p.put(key, j) }) }, nil
}

// dial logs in to hop, through the hop before it when there is one.
func (p *jumpPool) dial(ctx context.Context, hop *endpoint, c Config) (*ssh.Client, func(), error) {
	var via *ssh.Client
	release := func() {}
	if len(hop.hops) > 0 {
		var err error
		if via, release, err = p.client(ctx, hop.hops[len(hop.hops)-1], c); err != nil {
			return nil, nil, err
		}
	}
	client, err := handshake(ctx, hop, c, via)
	if err != nil {
		release()
		return nil, nil, err
	}
	return client, release, nil
}

// put lets go of j. The last one out closes the connection and forgets
// it, so a later Dial logs in again. A failed login is forgotten too once
// every node waiting for it has seen the error.
func (p *jumpPool) put(key string, j *jumpConn) {
	p.mu.Lock()
	j.refs--
	last := j.refs == 0
	if last && p.m[key] == j {
		delete(p.m, key)
	}
	p.mu.Unlock()
	if !last {
		return
	}
	select {
	case <-j.ready:
	default:
		return // the dialling node closes it when it is done (refs > 0 then)
	}
	if j.client != nil {
		close(j.done)
		j.client.Close()
		j.release()
	}
}
