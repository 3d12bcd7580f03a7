//go:build linux

package fakevpp

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"go.fd.io/govpp/adapter"
)

// StatsSocket serves a Server's counters the way VPP does: a unix
// seqpacket socket that hands each client the file descriptor of a shared
// memory segment in VPP's stats segment layout (version 2), which the
// client maps and reads on its own. The segment is rewritten from the
// model every few milliseconds, with VPP's epoch and in-progress
// protocol, so govpp's real stats client works against it.
type StatsSocket struct {
	srv  *Server
	path string

	mu   sync.Mutex
	ln   *net.UnixListener
	seg  *segment
	stop chan struct{}
	wg   sync.WaitGroup
}

// NewStatsSocket prepares a stats socket at path for srv; call Start.
func NewStatsSocket(srv *Server, path string) *StatsSocket {
	return &StatsSocket{srv: srv, path: path}
}

const (
	segSize = 4 << 20
	// segBase is the address the fake "VPP" pretends the segment is
	// mapped at; pointers in the segment are segBase + offset.
	segBase    = 0x7f0000000000
	segHdrSize = 64
	dirEntSize = 144 // int32 type, 4 bytes pad, uint64 union, name[128]
)

// segment is one mapped stats segment.
type segment struct {
	file *os.File
	mem  []byte
	last []byte // the data area last written
}

func newSegment() (*segment, error) {
	f, err := os.CreateTemp("", "fakevpp-stats-*")
	if err != nil {
		return nil, err
	}
	_ = os.Remove(f.Name()) // kept alive by the descriptor
	if err := f.Truncate(segSize); err != nil {
		f.Close()
		return nil, err
	}
	mem, err := syscall.Mmap(int(f.Fd()), 0, segSize, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_SHARED)
	if err != nil {
		f.Close()
		return nil, err
	}
	s := &segment{file: f, mem: mem}
	binary.LittleEndian.PutUint64(mem[0:], 2)       // version
	binary.LittleEndian.PutUint64(mem[8:], segBase) // base
	binary.LittleEndian.PutUint64(mem[16:], 1)      // epoch
	binary.LittleEndian.PutUint64(mem[40:], 0)      // no error vector
	return s, nil
}

func (s *segment) close() {
	_ = syscall.Munmap(s.mem)
	_ = s.file.Close()
}

func (s *segment) u64(off int) *uint64 { return (*uint64)(unsafe.Pointer(&s.mem[off])) }

// write lays the entries out and publishes them (in-progress set, data
// written, epoch bumped, in-progress cleared) when they changed.
func (s *segment) write(entries []adapter.StatEntry) error {
	b := &segBuilder{buf: make([]byte, segHdrSize, 64<<10)}
	dir := b.vec(len(entries), dirEntSize)
	for i, e := range entries {
		ent := dir + i*dirEntSize
		name := e.Name
		if len(name) > 127 {
			name = name[:127]
		}
		var typ int32
		var union uint64
		switch d := e.Data.(type) {
		case adapter.ScalarStat:
			typ, union = 1, uint64(math.Max(0, float64(d)))
		case adapter.SimpleCounterStat:
			typ = 2
			threads := b.vec(len(d), 8)
			for t, vec := range d {
				data := b.vec(len(vec), 8)
				for j, v := range vec {
					binary.LittleEndian.PutUint64(b.buf[data+8*j:], uint64(v))
				}
				binary.LittleEndian.PutUint64(b.buf[threads+8*t:], uint64(segBase+data))
			}
			union = uint64(segBase + threads)
		case adapter.CombinedCounterStat:
			typ = 3
			threads := b.vec(len(d), 8)
			for t, vec := range d {
				data := b.vec(len(vec), 16)
				for j, v := range vec {
					binary.LittleEndian.PutUint64(b.buf[data+16*j:], v[0])
					binary.LittleEndian.PutUint64(b.buf[data+16*j+8:], v[1])
				}
				binary.LittleEndian.PutUint64(b.buf[threads+8*t:], uint64(segBase+data))
			}
			union = uint64(segBase + threads)
		default:
			return fmt.Errorf("fakevpp stats: %s: unsupported type %T", name, e.Data)
		}
		binary.LittleEndian.PutUint32(b.buf[ent:], uint32(typ))
		binary.LittleEndian.PutUint64(b.buf[ent+8:], union)
		copy(b.buf[ent+16:ent+16+127], name)
	}
	b.align()
	b.buf = append(b.buf, make([]byte, 64)...) // pointers stay inside the segment
	if len(b.buf) > segSize {
		return errors.New("fakevpp stats: segment full")
	}
	data := b.buf[segHdrSize:]
	if bytes.Equal(data, s.last) {
		return nil
	}
	atomic.StoreUint64(s.u64(24), 1) // in progress
	copy(s.mem[segHdrSize:], data)
	atomic.StoreUint64(s.u64(32), uint64(segBase+dir))
	atomic.AddUint64(s.u64(16), 1)
	atomic.StoreUint64(s.u64(24), 0)
	s.last = bytes.Clone(data)
	return nil
}

// segBuilder appends VPP vectors: an 8-byte length, then the elements.
type segBuilder struct{ buf []byte }

func (b *segBuilder) align() {
	for len(b.buf)%8 != 0 {
		b.buf = append(b.buf, 0)
	}
}

// vec appends a vector of n elements of size bytes and returns the offset
// of its first element.
func (b *segBuilder) vec(n, size int) int {
	b.align()
	hdr := len(b.buf)
	b.buf = append(b.buf, make([]byte, 8+n*size)...)
	binary.LittleEndian.PutUint64(b.buf[hdr:], uint64(n))
	return hdr + 8
}

// Start creates a fresh segment (a new VPP instance has a new one) and
// listens.
func (ss *StatsSocket) Start() error {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.ln != nil {
		return errors.New("fakevpp stats: already started")
	}
	seg, err := newSegment()
	if err != nil {
		return err
	}
	_ = os.Remove(ss.path)
	ln, err := net.ListenUnix("unixpacket", &net.UnixAddr{Net: "unixpacket", Name: ss.path})
	if err != nil {
		seg.close()
		return err
	}
	ss.ln, ss.seg, ss.stop = ln, seg, make(chan struct{})
	if err := ss.refreshLocked(); err != nil {
		return err
	}
	ss.wg.Add(2)
	go ss.accept(ln, seg)
	go ss.refresher(ss.stop)
	return nil
}

// Stop closes the socket and removes its file, as a VPP that exits.
// Clients keep their mapping of the old segment, which no longer moves.
func (ss *StatsSocket) Stop() {
	ss.mu.Lock()
	ln, stop := ss.ln, ss.stop
	ss.ln = nil
	ss.mu.Unlock()
	if ln == nil {
		return
	}
	close(stop)
	_ = ln.Close()
	ss.wg.Wait()
	_ = os.Remove(ss.path)
	ss.mu.Lock()
	ss.seg.close()
	ss.seg = nil
	ss.mu.Unlock()
}

// Refresh writes the model's current counters now.
func (ss *StatsSocket) Refresh() error {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return ss.refreshLocked()
}

func (ss *StatsSocket) refreshLocked() error {
	if ss.seg == nil {
		return nil
	}
	entries, err := ss.srv.Stats().DumpStats()
	if err != nil {
		return err
	}
	return ss.seg.write(entries)
}

func (ss *StatsSocket) refresher(stop chan struct{}) {
	defer ss.wg.Done()
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			_ = ss.Refresh()
		}
	}
}

func (ss *StatsSocket) accept(ln *net.UnixListener, seg *segment) {
	defer ss.wg.Done()
	for {
		c, err := ln.AcceptUnix()
		if err != nil {
			return
		}
		_, _, _ = c.WriteMsgUnix([]byte{0}, syscall.UnixRights(int(seg.file.Fd())), nil)
		_ = c.Close()
	}
}
