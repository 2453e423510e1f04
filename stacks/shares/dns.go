package shares

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"time"

	"golang.org/x/net/dns/dnsmessage"
)

// Answer is one DNS answer for the round-robin FQDN: its A records in the
// order the server sent them, and their TTL (the lowest, if they differ).
type Answer struct {
	Addrs []string
	TTL   uint32
}

// QueryA asks the server at the other end of c for fqdn's A records, once,
// with recursion not desired (the server is authoritative). Over a
// net.PacketConn (UDP, as clients ask) the message goes as it is; over a
// stream (TCP, e.g. an SSH direct-tcpip channel to the server) with the
// two-byte length prefix of RFC 1035 4.2.2, so one connection carries any
// number of queries. Not Go's net.Resolver: it sorts the addresses it
// returns (RFC 6724) and gives no TTL, and the order and TTL are what is
// checked.
func QueryA(c net.Conn, fqdn string, id uint16) (Answer, error) {
	name, err := dnsmessage.NewName(strings.TrimSuffix(fqdn, ".") + ".")
	if err != nil {
		return Answer{}, err
	}
	q := dnsmessage.Message{
		Header:    dnsmessage.Header{ID: id},
		Questions: []dnsmessage.Question{{Name: name, Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET}},
	}
	msg, err := q.Pack()
	if err != nil {
		return Answer{}, err
	}
	_, datagram := c.(net.PacketConn)
	c.SetDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 65535)
	var n int
	if !datagram {
		out := binary.BigEndian.AppendUint16(nil, uint16(len(msg)))
		if _, err := c.Write(append(out, msg...)); err != nil {
			return Answer{}, err
		}
		if _, err := io.ReadFull(c, buf[:2]); err != nil {
			return Answer{}, err
		}
		n = int(binary.BigEndian.Uint16(buf[:2]))
		if _, err := io.ReadFull(c, buf[:n]); err != nil {
			return Answer{}, err
		}
	} else {
		if _, err := c.Write(msg); err != nil {
			return Answer{}, err
		}
		if n, err = c.Read(buf); err != nil {
			return Answer{}, err
		}
	}
	var m dnsmessage.Message
	if err := m.Unpack(buf[:n]); err != nil {
		return Answer{}, err
	}
	switch {
	case m.ID != id:
		return Answer{}, fmt.Errorf("answer id %d to query %d", m.ID, id)
	case m.RCode != dnsmessage.RCodeSuccess:
		return Answer{}, fmt.Errorf("%s: %v", fqdn, m.RCode)
	case m.Truncated:
		return Answer{}, errors.New("truncated answer")
	}
	var a Answer
	for _, r := range m.Answers {
		ar, ok := r.Body.(*dnsmessage.AResource)
		if !ok || !strings.EqualFold(r.Header.Name.String(), name.String()) {
			continue
		}
		if len(a.Addrs) == 0 || r.Header.TTL < a.TTL {
			a.TTL = r.Header.TTL
		}
		a.Addrs = append(a.Addrs, netip.AddrFrom4(ar.A).String())
	}
	if len(a.Addrs) == 0 {
		return Answer{}, fmt.Errorf("%s: no A record in the answer", fqdn)
	}
	return a, nil
}
