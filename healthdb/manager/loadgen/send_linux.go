package loadgen

import (
	"net"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// batchWriter sends a batch of datagrams on a connected UDP socket with
// sendmmsg: one system call for up to maxBatch datagrams, so that the
// load generator's CPU stays small next to the health manager's.
type batchWriter struct {
	rc   syscall.RawConn
	hdrs []unix.Mmsghdr
	iovs []unix.Iovec
}

func newBatchWriter(conn *net.UDPConn) (*batchWriter, error) {
	rc, err := conn.SyscallConn()
	if err != nil {
		return nil, err
	}
	return &batchWriter{rc: rc, hdrs: make([]unix.Mmsghdr, maxBatch), iovs: make([]unix.Iovec, maxBatch)}, nil
}

// write sends datagrams (at most maxBatch); a datagram the kernel refuses
// (the health manager not listening yet) is dropped, as a lost datagram
// would be, and shows in the report as sent but not applied.
func (w *batchWriter) write(datagrams [][]byte) {
	for i, d := range datagrams {
		w.iovs[i].Base = &d[0]
		w.iovs[i].SetLen(len(d))
		w.hdrs[i] = unix.Mmsghdr{}
		w.hdrs[i].Hdr.Iov = &w.iovs[i]
		w.hdrs[i].Hdr.SetIovlen(1)
	}
	for off := 0; off < len(datagrams); {
		var sent int
		var errno syscall.Errno
		err := w.rc.Write(func(fd uintptr) bool {
			for {
				r, _, e := unix.Syscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&w.hdrs[off])), uintptr(len(datagrams)-off), 0, 0, 0)
				switch e {
				case 0:
					sent = int(r)
					return true
				case unix.EINTR:
					continue
				case unix.EAGAIN:
					return false // wait in the poller for room in the buffer
				default:
					errno = e
					return true
				}
			}
		})
		if err != nil {
			return
		}
		if errno != 0 || sent == 0 {
			sent = 1 // skip the datagram the kernel refused
		}
		off += sent
	}
}

// processCPU is this process's user+system CPU time, in seconds.
func processCPU() float64 {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}
