//go:build linux

package udp

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// readBatch is how many datagrams one recvmmsg call may return. Under a
// flood the socket always has that many waiting, so the per-call cost is
// shared by all of them; 32 already makes it small next to the per-datagram
// work, and each slot holds a 64 KiB buffer.
const readBatch = 32

// sockaddrSpace fits the source address of either family.
const sockaddrSpace = unix.SizeofSockaddrInet6

// oobSpace fits the SO_RXQ_OVFL control message.
var oobSpace = unix.CmsgSpace(4)

// reusePortSockets: SO_REUSEPORT lets several sockets, each with its own
// reader, share the port.
const reusePortSockets = true

// checkPortFree binds addr once without SO_REUSEPORT, as Octavia's health
// manager binds it, and lets it go. It fails when any socket holds the
// port: with SO_REUSEPORT, a second health manager of the same user on
// the same port (an old one left running, one started by hand) would
// otherwise bind beside the first, and the kernel would split the
// heartbeats between the two, each silently getting about half; if the
// other has another heartbeat_key or database, amphorae would lose half
// their heartbeats and be failed over. Port 0 picks a free port and is
// not checked.
func checkPortFree(addr netip.AddrPort) error {
	if addr.Port() == 0 {
		return nil
	}
	pc, err := net.ListenPacket(udpNetwork(addr), addr.String())
	if err != nil {
		if errors.Is(err, unix.EADDRINUSE) {
			return fmt.Errorf("%w (another health manager?); stop it or use another bind_port: %v", ErrPortHeld, err)
		}
		return err
	}
	return pc.Close()
}

func listenReusePort(addr netip.AddrPort, rcvbuf int) (*net.UDPConn, error) {
	lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
		var sockErr error
		err := rc.Control(func(fd uintptr) {
			sockErr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
			if sockErr == nil {
				// Every datagram read then carries the socket's count of
				// datagrams the kernel dropped for want of buffer space.
				sockErr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RXQ_OVFL, 1)
			}
			if sockErr == nil && rcvbuf > 0 {
				// Linux doubles the value and caps it at net.core.rmem_max.
				sockErr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, rcvbuf)
			}
		})
		if err != nil {
			return err
		}
		return sockErr
	}}
	pc, err := lc.ListenPacket(context.Background(), udpNetwork(addr), addr.String())
	if err != nil {
		return nil, err
	}
	return pc.(*net.UDPConn), nil
}

// mmsgBatch is the memory one recvmmsg call fills: per slot a header, a
// 64 KiB buffer, a source address and room for control messages. It is
// allocated once per socket and reused for every call.
type mmsgBatch struct {
	hdrs  []unix.Mmsghdr
	iovs  []unix.Iovec
	names []byte
	oob   []byte
	bufs  []byte
}

func newMmsgBatch(n int) *mmsgBatch {
	b := &mmsgBatch{
		hdrs:  make([]unix.Mmsghdr, n),
		iovs:  make([]unix.Iovec, n),
		names: make([]byte, n*sockaddrSpace),
		oob:   make([]byte, n*oobSpace),
		bufs:  make([]byte, n*maxDatagram),
	}
	for i := range b.hdrs {
		b.iovs[i].Base = &b.bufs[i*maxDatagram]
		b.iovs[i].SetLen(maxDatagram)
		h := &b.hdrs[i].Hdr
		h.Name = &b.names[i*sockaddrSpace]
		h.Iov = &b.iovs[i]
		h.SetIovlen(1)
		h.Control = &b.oob[i*oobSpace]
	}
	return b
}

// reset restores what the kernel overwrites in each header.
func (b *mmsgBatch) reset() {
	for i := range b.hdrs {
		h := &b.hdrs[i]
		h.Len = 0
		h.Hdr.Namelen = sockaddrSpace
		h.Hdr.SetControllen(oobSpace)
		h.Hdr.Flags = 0
	}
}

// recv fills the batch with what the socket holds, at least one datagram;
// it waits in the poller, not in the kernel, while there is none.
func (b *mmsgBatch) recv(rc syscall.RawConn) (int, error) {
	b.reset()
	var n int
	var errno syscall.Errno
	err := rc.Read(func(fd uintptr) bool {
		for {
			// The socket is non-blocking: recvmmsg returns what is queued,
			// up to len(hdrs), or EAGAIN when nothing is.
			r, _, e := unix.Syscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&b.hdrs[0])), uintptr(len(b.hdrs)), 0, 0, 0)
			switch e {
			case 0:
				n, errno = int(r), 0
				return true
			case unix.EINTR:
				continue
			case unix.EAGAIN:
				return false
			default:
				errno = e
				return true
			}
		}
	})
	if err != nil {
		return 0, err
	}
	if errno != 0 {
		return 0, errno
	}
	return n, nil
}

// datagram returns slot i's payload, source address and control messages.
func (b *mmsgBatch) datagram(i int) (payload []byte, from netip.AddrPort, oob []byte) {
	h := &b.hdrs[i]
	payload = b.bufs[i*maxDatagram : i*maxDatagram+int(h.Len)]
	from = sockaddrAddrPort(b.names[i*sockaddrSpace : i*sockaddrSpace+int(h.Hdr.Namelen)])
	oob = b.oob[i*oobSpace : i*oobSpace+int(h.Hdr.Controllen)]
	return payload, from, oob
}

// sockaddrAddrPort decodes a sockaddr_in or sockaddr_in6 without
// allocating; anything else is the zero AddrPort (only logs show it).
func sockaddrAddrPort(sa []byte) netip.AddrPort {
	if len(sa) < 2 {
		return netip.AddrPort{}
	}
	// The family is in host order, the port in network order.
	switch binary.NativeEndian.Uint16(sa) {
	case unix.AF_INET:
		if len(sa) >= unix.SizeofSockaddrInet4 {
			return netip.AddrPortFrom(netip.AddrFrom4([4]byte(sa[4:8])), binary.BigEndian.Uint16(sa[2:4]))
		}
	case unix.AF_INET6:
		if len(sa) >= unix.SizeofSockaddrInet6 {
			addr := netip.AddrFrom16([16]byte(sa[8:24]))
			if scope := binary.NativeEndian.Uint32(sa[24:28]); scope != 0 && addr.IsLinkLocalUnicast() {
				// The interface index: naming it would cost a syscall.
				addr = addr.WithZone(strconv.FormatUint(uint64(scope), 10))
			}
			return netip.AddrPortFrom(addr, binary.BigEndian.Uint16(sa[2:4]))
		}
	}
	return netip.AddrPort{}
}

// read takes datagrams off the socket in batches with recvmmsg: one system
// call for up to readBatch of them instead of one each.
func (r *Receiver) read(conn *net.UDPConn) {
	rc, err := conn.SyscallConn()
	if err != nil {
		r.cfg.Logger.Error("heartbeat socket unusable", "err", err)
		return
	}
	batch := newMmsgBatch(readBatch)
	ds := make([]datagram, 0, readBatch)
	var copies slab
	var kernelDrops uint32 // the socket's cumulative count, as last read
	for {
		n, err := batch.recv(rc)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			r.cfg.Logger.Warn("heartbeat socket read failed", "err", err)
			continue
		}
		// They all arrived before recvmmsg returned.
		now := r.cfg.Now()
		ds = ds[:0]
		bytes := 0
		for i := 0; i < n; i++ {
			payload, from, oob := batch.datagram(i)
			if total, ok := socketDrops(oob); ok && total != kernelDrops {
				// uint32 arithmetic survives the kernel's counter wrapping.
				r.lost("socket", "buffer_full", int(total-kernelDrops))
				kernelDrops = total
			}
			ds = append(ds, datagram{data: copies.copy(payload), from: from, recv: now})
			bytes += len(payload)
		}
		r.enqueue(ds, bytes)
	}
}

// socketDrops finds the SO_RXQ_OVFL count in a datagram's control
// messages, without allocating. The kernel attaches it once the socket has
// dropped anything.
func socketDrops(oob []byte) (uint32, bool) {
	for len(oob) > 0 {
		h, data, rest, err := unix.ParseOneSocketControlMessage(oob)
		if err != nil {
			return 0, false
		}
		if h.Level == unix.SOL_SOCKET && h.Type == unix.SO_RXQ_OVFL && len(data) >= 4 {
			return binary.NativeEndian.Uint32(data), true
		}
		oob = rest
	}
	return 0, false
}
