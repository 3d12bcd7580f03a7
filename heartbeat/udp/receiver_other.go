//go:build !linux

package udp

import (
	"context"
	"errors"
	"net"
	"net/netip"
)

// reusePortSockets: without Linux's SO_REUSEPORT semantics one socket,
// with one reader, holds the port.
const reusePortSockets = false

// listenReusePort binds a plain UDP socket; the kernel's drop count is not
// available, so only receive-queue drops are counted.
func listenReusePort(addr netip.AddrPort, rcvbuf int) (*net.UDPConn, error) {
	pc, err := new(net.ListenConfig).ListenPacket(context.Background(), udpNetwork(addr), addr.String())
	if err != nil {
		return nil, err
	}
	conn := pc.(*net.UDPConn)
	if rcvbuf > 0 {
		if err := conn.SetReadBuffer(rcvbuf); err != nil {
			conn.Close()
			return nil, err
		}
	}
	return conn, nil
}

// read takes datagrams off the socket one system call each.
func (r *Receiver) read(conn *net.UDPConn) {
	buf := make([]byte, maxDatagram)
	var copies slab
	for {
		n, from, err := conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			r.cfg.Logger.Warn("heartbeat socket read failed", "err", err)
			continue
		}
		r.enqueue([]datagram{{data: copies.copy(buf[:n]), from: from, recv: r.cfg.Now()}}, n)
	}
}

// checkPortFree: without SO_REUSEPORT the bind itself fails when the port
// is held.
func checkPortFree(netip.AddrPort) error { return nil }
