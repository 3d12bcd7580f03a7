package fakevpp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"go.fd.io/govpp/api"
	"go.fd.io/govpp/binapi/ip"
	"go.fd.io/govpp/binapi/lb"
	"go.fd.io/govpp/binapi/memclnt"
	"go.fd.io/govpp/binapi/vlib"
	"go.fd.io/govpp/binapi/vpe"
	"go.fd.io/govpp/codec"

	"github.com/octavia-vpp/health/vpp/internal/lbapi"
)

// Flavor is the VPP version the fake poses as.
type Flavor int

const (
	// Released is VPP <= 26.06: lb API 1.1.0, no weighted messages.
	Released Flavor = iota
	// Master is VPP master: lb API 1.2.0 with weights.
	Master
)

const sockclntCreateID = 15

// Request is one request the fake received, decoded.
type Request struct {
	Name string      // message name
	Msg  api.Message // decoded request
}

// Options tune a fake VPP beyond its flavour.
type Options struct {
	// Omit leaves these messages (by name, e.g. "lb_as_set_weight") out of
	// the message table, as a VPP that lacks them or has other CRCs.
	Omit []string
	// NoAPIVersions makes api_versions unanswered (unknown message).
	NoAPIVersions bool
}

// Server is a fake VPP listening on a unix socket.
type Server struct {
	path   string
	flavor Flavor
	opts   Options

	mu       sync.Mutex
	ln       net.Listener
	conns    map[net.Conn]bool
	model    *Model
	byID     map[uint16]api.Message
	table    []memclnt.MessageTableEntry
	requests []Request
	boots    int
	hung     bool
	wg       sync.WaitGroup
}

// New starts a fake VPP on path.
func New(path string, flavor Flavor) (*Server, error) {
	return NewWithOptions(path, flavor, Options{})
}

// NewWithOptions starts a fake VPP with options.
func NewWithOptions(path string, flavor Flavor, opts Options) (*Server, error) {
	s := &Server{path: path, flavor: flavor, opts: opts, conns: map[net.Conn]bool{}}
	s.buildTable()
	if err := s.Start(); err != nil {
		return nil, err
	}
	return s, nil
}

// weightedNames are the messages released VPP does not have.
var weightedNames = map[string]bool{
	"lb_conf_get": true, "lb_conf_get_reply": true,
	"lb_add_del_as_v2": true, "lb_add_del_as_v2_reply": true,
	"lb_as_set_weight": true, "lb_as_set_weight_reply": true,
	"lb_as_v2_dump": true, "lb_as_v2_details": true,
}

// buildTable assigns ids to every registered message (name_crc), as VPP's
// sockclnt_create reply does. Released VPP lacks the lb 1.2.0 messages.
func (s *Server) buildTable() {
	seen := map[string]api.Message{}
	for _, msgs := range api.GetRegisteredMessages() {
		for nameCrc, m := range msgs {
			if s.flavor == Released && weightedNames[m.GetMessageName()] {
				continue
			}
			if slices.Contains(s.opts.Omit, m.GetMessageName()) ||
				(s.opts.NoAPIVersions && strings.HasPrefix(m.GetMessageName(), "api_versions")) {
				continue
			}
			if _, ok := seen[nameCrc]; !ok {
				seen[nameCrc] = m
			}
		}
	}
	names := make([]string, 0, len(seen))
	for n := range seen {
		names = append(names, n)
	}
	sort.Strings(names)
	s.byID = map[uint16]api.Message{}
	next := uint16(16)
	for _, n := range names {
		id := next
		if strings.HasPrefix(n, "sockclnt_create_") && !strings.HasPrefix(n, "sockclnt_create_reply_") {
			id = sockclntCreateID
		} else {
			next++
		}
		s.byID[id] = seen[n]
		s.table = append(s.table, memclnt.MessageTableEntry{Index: id, Name: n})
	}
}

func (s *Server) idOf(m api.Message) uint16 {
	n := m.GetMessageName() + "_" + m.GetCrcString()
	for _, e := range s.table {
		if e.Name == n {
			return e.Index
		}
	}
	return 0
}

// Start (re)creates the socket. A fresh start after Stop is a VPP restart:
// the lb state is gone and the boot time changes.
func (s *Server) Start() error { return s.listen(true) }

// Resume re-opens the socket after Stop with the same lb state, as when
// only the API connection was lost.
func (s *Server) Resume() error { return s.listen(false) }

func (s *Server) listen(fresh bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln != nil {
		return errors.New("fakevpp: already started")
	}
	_ = os.Remove(s.path)
	ln, err := net.Listen("unix", s.path)
	if err != nil {
		return err
	}
	s.ln = ln
	if fresh || s.model == nil {
		s.boots++
		s.model = newModel(s.flavor == Master, time.Unix(1_700_000_000+int64(s.boots)*1000, 0))
	}
	s.wg.Add(1)
	go s.accept(ln)
	return nil
}

// Stop closes every connection and removes the socket file, as a VPP that
// exits does.
func (s *Server) Stop() {
	s.mu.Lock()
	ln := s.ln
	s.ln = nil
	for c := range s.conns {
		_ = c.Close()
	}
	s.mu.Unlock()
	if ln != nil {
		_ = ln.Close()
	}
	s.wg.Wait()
	_ = os.Remove(s.path)
}

// Reboot simulates a VPP restart that the client's socket survives (as a
// supervisor would only notice through the boot time): the lb state is
// wiped and the boot time changes.
func (s *Server) Reboot() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.boots++
	s.model = newModel(s.flavor == Master, time.Unix(1_700_000_000+int64(s.boots)*1000, 0))
}

// SetHung makes the fake stop answering everything but the socket
// handshake, as a wedged VPP whose socket is still open.
func (s *Server) SetHung(h bool) {
	s.mu.Lock()
	s.hung = h
	s.mu.Unlock()
}

// Model returns the current instance's lb model.
func (s *Server) Model() *Model {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.model
}

// Requests returns the requests received so far (all instances).
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.requests)
}

// ResetRequests forgets the recorded requests.
func (s *Server) ResetRequests() {
	s.mu.Lock()
	s.requests = nil
	s.mu.Unlock()
}

// CLICommands returns the cli_inband commands received, in order.
func (s *Server) CLICommands() []string {
	var out []string
	for _, r := range s.Requests() {
		if c, ok := r.Msg.(*vlib.CliInband); ok {
			out = append(out, c.Cmd)
		}
	}
	return out
}

func (s *Server) accept(ln net.Listener) {
	defer s.wg.Done()
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		if s.ln != ln {
			s.mu.Unlock()
			_ = c.Close()
			return
		}
		s.conns[c] = true
		s.mu.Unlock()
		s.wg.Add(1)
		go s.serve(c)
	}
}

func (s *Server) serve(c net.Conn) {
	defer s.wg.Done()
	defer func() {
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		_ = c.Close()
	}()
	hdr := make([]byte, 16)
	for {
		if _, err := io.ReadFull(c, hdr); err != nil {
			return
		}
		n := binary.BigEndian.Uint32(hdr[8:12])
		if n > 1<<20 {
			return
		}
		data := make([]byte, n)
		if _, err := io.ReadFull(c, data); err != nil {
			return
		}
		if len(data) < 10 {
			return
		}
		replies, err := s.handle(data)
		if err != nil {
			return
		}
		for _, r := range replies {
			frame := make([]byte, 16+len(r))
			binary.BigEndian.PutUint32(frame[8:12], uint32(len(r)))
			copy(frame[16:], r)
			if _, err := c.Write(frame); err != nil {
				return
			}
		}
	}
}

// handle decodes one request and encodes its replies.
func (s *Server) handle(data []byte) ([][]byte, error) {
	id := binary.BigEndian.Uint16(data[0:2])
	ctx := binary.BigEndian.Uint32(data[6:10])
	s.mu.Lock()
	proto, ok := s.byID[id]
	model, hung := s.model, s.hung
	s.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("fakevpp: unknown message id %d", id)
	}
	if hung && id != sockclntCreateID {
		return nil, nil
	}
	req := reflect.New(reflect.TypeOf(proto).Elem()).Interface().(api.Message)
	if err := codec.DefaultCodec.DecodeMsg(data, req); err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.requests = append(s.requests, Request{Name: req.GetMessageName(), Msg: req})
	s.mu.Unlock()

	var replies []api.Message
	model.mu.Lock()
	switch m := req.(type) {
	case *memclnt.SockclntCreate:
		replies = append(replies, &memclnt.SockclntCreateReply{Index: 1, Count: uint16(len(s.table)), MessageTable: s.table})
	case *memclnt.SockclntDelete:
		replies = append(replies, &memclnt.SockclntDeleteReply{})
	case *memclnt.ControlPing:
		replies = append(replies, &memclnt.ControlPingReply{VpePID: 4242})
	case *lbapi.ControlPing:
		replies = append(replies, &lbapi.ControlPingReply{VpePID: 4242})
	case *vpe.ShowVersion:
		v := "v26.06-release"
		if s.flavor == Master {
			v = "v26.10-rc0~42-gdb44addb6"
		}
		replies = append(replies, &vpe.ShowVersionReply{Program: "vpe", Version: v, BuildDate: "fake"})
	case *memclnt.APIVersions:
		minor := uint32(1)
		if s.flavor == Master {
			minor = 2
		}
		vs := []memclnt.ModuleVersion{{Major: 1, Minor: 0, Patch: 0, Name: "memclnt"}, {Major: 1, Minor: minor, Patch: 0, Name: "lb"}}
		replies = append(replies, &memclnt.APIVersionsReply{Count: uint32(len(vs)), APIVersions: vs})
	case *vlib.CliInband:
		replies = append(replies, &vlib.CliInbandReply{Reply: model.cli(m.Cmd)})
	case *lb.LbConf:
		rv := model.setConf(netip.AddrFrom4(m.IP4SrcAddress), netip.AddrFrom16(m.IP6SrcAddress), m.StickyBucketsPerCore, m.FlowTimeout)
		replies = append(replies, &lb.LbConfReply{Retval: int32(rv)})
	case *lb.LbAddDelVipV2:
		replies = append(replies, &lb.LbAddDelVipV2Reply{Retval: int32(model.apiVIP(m, s.flavor))})
	case *lbapi.LbAddDelAsV2:
		k := apiKey(m.Pfx, m.Protocol, m.Port)
		var rv int
		if m.IsDel {
			rv = model.delAS(k, addrOf(m.AsAddress), m.IsFlush)
		} else {
			rv = model.addAS(k, addrOf(m.AsAddress), int(m.Weight))
		}
		replies = append(replies, &lbapi.LbAddDelAsV2Reply{Retval: int32(rv)})
	case *lbapi.LbAsSetWeight:
		rv := model.setWeight(apiKey(m.Pfx, m.Protocol, m.Port), addrOf(m.AsAddress), int(m.Weight), m.IsFlush)
		replies = append(replies, &lbapi.LbAsSetWeightReply{Retval: int32(rv)})
	case *ip.IPRouteLookup:
		p := netip.PrefixFrom(addrOf(m.Prefix.Address), int(m.Prefix.Len)).Masked()
		if r, ok := model.routes[p]; ok {
			replies = append(replies, &ip.IPRouteLookupReply{Route: ip.IPRoute{StatsIndex: uint32(r), Prefix: m.Prefix}})
		} else {
			replies = append(replies, &ip.IPRouteLookupReply{Retval: errNoSuchEntry})
		}
	default:
		model.mu.Unlock()
		return nil, fmt.Errorf("fakevpp: no handler for %s", req.GetMessageName())
	}
	model.mu.Unlock()

	var out [][]byte
	for _, r := range replies {
		b, err := codec.DefaultCodec.EncodeMsg(r, s.idOf(r))
		if err != nil {
			return nil, err
		}
		binary.BigEndian.PutUint32(b[2:6], ctx)
		out = append(out, b)
	}
	return out, nil
}
