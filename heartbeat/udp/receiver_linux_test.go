//go:build linux

package udp

import (
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/octavia-vpp/health/heartbeat"
)

const readBatchForTest = readBatch

func sockaddr(family uint16, port uint16, addr []byte, scope uint32) []byte {
	size := unix.SizeofSockaddrInet4
	if family == unix.AF_INET6 {
		size = unix.SizeofSockaddrInet6
	}
	b := make([]byte, size)
	binary.NativeEndian.PutUint16(b, family)
	binary.BigEndian.PutUint16(b[2:], port)
	switch family {
	case unix.AF_INET:
		copy(b[4:], addr)
	case unix.AF_INET6:
		copy(b[8:], addr)
		binary.NativeEndian.PutUint32(b[24:], scope)
	}
	return b
}

func TestSockaddrAddrPort(t *testing.T) {
	v6 := netip.MustParseAddr("2001:db8::7").As16()
	ll := netip.MustParseAddr("fe80::1").As16()
	tests := []struct {
		name string
		sa   []byte
		want netip.AddrPort
	}{
		{"IPv4", sockaddr(unix.AF_INET, 5555, []byte{192, 0, 2, 1}, 0), netip.MustParseAddrPort("192.0.2.1:5555")},
		{"IPv6", sockaddr(unix.AF_INET6, 40000, v6[:], 0), netip.MustParseAddrPort("[2001:db8::7]:40000")},
		{"IPv6 link-local with interface index", sockaddr(unix.AF_INET6, 1, ll[:], 3), netip.MustParseAddrPort("[fe80::1%3]:1")},
		{"truncated", sockaddr(unix.AF_INET6, 1, v6[:], 0)[:20], netip.AddrPort{}},
		{"unknown family", sockaddr(unix.AF_UNIX, 1, nil, 0), netip.AddrPort{}},
		{"empty", nil, netip.AddrPort{}},
	}
	for _, tt := range tests {
		if got := sockaddrAddrPort(tt.sa); got != tt.want {
			t.Errorf("%s: %v, want %v", tt.name, got, tt.want)
		}
	}
}

func cmsg(level, typ int32, data []byte) []byte {
	b := make([]byte, unix.CmsgSpace(len(data)))
	h := (*unix.Cmsghdr)(unsafe.Pointer(&b[0]))
	h.Level, h.Type = level, typ
	h.SetLen(unix.CmsgLen(len(data)))
	copy(b[unix.CmsgLen(0):], data)
	return b
}

func TestSocketDrops(t *testing.T) {
	count := binary.NativeEndian.AppendUint32(nil, 4_000_000_000)
	tests := []struct {
		name  string
		oob   []byte
		want  uint32
		found bool
	}{
		{"none", nil, 0, false},
		{"the count", cmsg(unix.SOL_SOCKET, unix.SO_RXQ_OVFL, count), 4_000_000_000, true},
		{"after another message", append(cmsg(unix.SOL_SOCKET, unix.SO_TIMESTAMP, make([]byte, 16)),
			cmsg(unix.SOL_SOCKET, unix.SO_RXQ_OVFL, count)...), 4_000_000_000, true},
		{"other messages only", cmsg(unix.SOL_IP, unix.IP_TTL, []byte{1, 0, 0, 0}), 0, false},
		{"truncated", cmsg(unix.SOL_SOCKET, unix.SO_RXQ_OVFL, count)[:10], 0, false},
	}
	for _, tt := range tests {
		got, found := socketDrops(tt.oob)
		if got != tt.want || found != tt.found {
			t.Errorf("%s: %d %v, want %d %v", tt.name, got, found, tt.want, tt.found)
		}
	}
	if n := testing.AllocsPerRun(100, func() { socketDrops(tests[2].oob) }); n != 0 {
		t.Errorf("%v allocations per datagram's control messages", n)
	}
}

// A port another socket holds is refused, as Octavia's plain bind refuses
// it, whether that socket set SO_REUSEPORT (another of our managers, which
// the kernel would otherwise let share the port and half the heartbeats)
// or not.
func TestReceiverRefusesAHeldPort(t *testing.T) {
	for _, reuse := range []bool{true, false} {
		var holder *net.UDPConn
		var err error
		if reuse {
			holder, err = listenReusePort(netip.MustParseAddrPort("127.0.0.1:0"), 0)
		} else {
			holder, err = net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		}
		if err != nil {
			t.Fatal(err)
		}
		held := holder.LocalAddr().(*net.UDPAddr).AddrPort()
		r, err := NewReceiver(ReceiverConfig{Addr: held, Sockets: 2,
			Keys: func() *heartbeat.Keyring { return nil }, Deliver: func(*heartbeat.Message) {}})
		if err == nil {
			r.closeConns()
			t.Errorf("SO_REUSEPORT holder %v: bound %v beside it", reuse, held)
		} else if !errors.Is(err, ErrPortHeld) {
			t.Errorf("SO_REUSEPORT holder %v: %v; want ErrPortHeld", reuse, err)
		}
		holder.Close()
		// Free again: bound.
		r, err = NewReceiver(ReceiverConfig{Addr: held, Sockets: 2,
			Keys: func() *heartbeat.Keyring { return nil }, Deliver: func(*heartbeat.Message) {}})
		if err != nil {
			t.Fatalf("port %v free again: %v", held, err)
		}
		r.closeConns()
	}
}
