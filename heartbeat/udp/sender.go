package udp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Controller is one parsed entry of controller_ip_port_list.
type Controller struct {
	// Entry is the entry as written; it names the controller in logs,
	// metrics and errors.
	Entry string
	// Host is an IP literal (with its zone, if any) or a host name.
	Host string
	Port uint16
}

// ParseController parses one controller_ip_port_list entry. It accepts
// "ip:port", bare IPv6 with the last colon as separator
// ("2001:db8::1:5555"), "[ipv6]:port" and link-local addresses with a zone
// ("fe80::1%eth0:5555"). A host name is accepted and resolved when sending.
func ParseController(entry string) (Controller, error) {
	e := strings.TrimSpace(entry)
	c := Controller{Entry: e}
	var host, port string
	if strings.HasPrefix(e, "[") {
		end := strings.Index(e, "]")
		if end < 0 || !strings.HasPrefix(e[end+1:], ":") {
			return c, fmt.Errorf("controller %q: want [ipv6]:port", entry)
		}
		host, port = e[1:end], e[end+2:]
		if _, err := netip.ParseAddr(host); err != nil || !strings.Contains(host, ":") {
			return c, fmt.Errorf("controller %q: %q is not an IPv6 address", entry, host)
		}
	} else {
		i := strings.LastIndex(e, ":")
		if i < 0 {
			return c, fmt.Errorf("controller %q: no port (want host:port)", entry)
		}
		host, port = e[:i], e[i+1:]
		if strings.Contains(host, ":") {
			if _, err := netip.ParseAddr(host); err != nil {
				return c, fmt.Errorf("controller %q: %q is not an IPv6 address", entry, host)
			}
		}
	}
	if host == "" {
		return c, fmt.Errorf("controller %q: empty host", entry)
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil || p == 0 {
		return c, fmt.Errorf("controller %q: bad port %q", entry, port)
	}
	c.Host, c.Port = host, uint16(p)
	return c, nil
}

// Score bounds and changes of the scored controller list.
const (
	ScoreInitial = 1
	ScoreMin     = -3
	ScoreMax     = 3
)

// Scoreboard is the pure part of the sender: one score per controller and
// the round-robin cursor. Every controller starts at +1; a send error
// costs 1, a successful send earns 1, bounded to [-3, +3]. Picks go
// round-robin among controllers with a non-negative score, or among all
// when none has one. A controller below zero earns 1 back after
// RecoverEvery sends went elsewhere, so a controller that came back is
// tried again; that wait doubles with each consecutive failure (up to 8
// times), so a controller that stays down costs few heartbeats.
type Scoreboard struct {
	Scores []int
	// RecoverEvery is the number of sends elsewhere after which a negative
	// controller earns a point (default 3 when 0).
	RecoverEvery int
	skipped      []int
	fails        []int // consecutive failures
	next         int
}

// NewScoreboard returns a board of n controllers at the initial score.
func NewScoreboard(n int) *Scoreboard {
	b := &Scoreboard{Scores: make([]int, n), skipped: make([]int, n), fails: make([]int, n)}
	for i := range b.Scores {
		b.Scores[i] = ScoreInitial
	}
	return b
}

// Pick returns the index of the next controller, -1 when there is none.
func (b *Scoreboard) Pick() int {
	n := len(b.Scores)
	if n == 0 {
		return -1
	}
	pick := -1
	for k := range n {
		i := (b.next + k) % n
		if b.Scores[i] >= 0 {
			pick = i
			break
		}
	}
	if pick < 0 {
		pick = b.next % n
	}
	b.next = (pick + 1) % n
	every := b.RecoverEvery
	if every <= 0 {
		every = 3
	}
	for i := range b.Scores {
		if i == pick || b.Scores[i] >= 0 {
			b.skipped[i] = 0
			continue
		}
		b.skipped[i]++
		if b.skipped[i] >= every<<min(max(b.fails[i]-1, 0), 3) {
			b.skipped[i] = 0
			b.Scores[i]++
		}
	}
	return pick
}

// Record applies the result of a send to controller i.
func (b *Scoreboard) Record(i int, ok bool) {
	if i < 0 || i >= len(b.Scores) {
		return
	}
	if ok {
		b.Scores[i] = min(b.Scores[i]+1, ScoreMax)
		b.fails[i] = 0
	} else {
		b.Scores[i] = max(b.Scores[i]-1, ScoreMin)
		b.fails[i]++
	}
}

// MaxDatagram is the largest UDP payload over IPv4.
const MaxDatagram = 65507

// ErrTooLarge is returned for a heartbeat that does not fit a datagram.
var ErrTooLarge = errors.New("heartbeat larger than a UDP datagram")

// ErrNoController is returned when there is nowhere to send.
var ErrNoController = errors.New("no usable controller")

// SenderConfig configures a Sender.
type SenderConfig struct {
	// Controllers are controller_ip_port_list entries.
	Controllers []string
	// RecoverEvery: see Scoreboard.RecoverEvery.
	RecoverEvery int
	// Resolver resolves host names; nil means net.DefaultResolver.
	Resolver *net.Resolver
	// Logger receives WARN lines for failing controllers.
	Logger *slog.Logger
}

// ControllerStats is what the sender knows about one controller.
type ControllerStats struct {
	Entry  string
	Addr   string // resolved address, "" before resolution
	Score  int
	Sent   uint64 // datagrams handed to the kernel
	Errors uint64 // send errors, including refusals seen afterwards
}

type destination struct {
	ctl     Controller
	conn    *net.UDPConn
	addr    string
	pending bool // a send awaits confirmation (an ICMP refusal arrives later)
	sent    uint64
	errs    uint64
}

// Sender sends sealed heartbeats to one controller at a time, chosen from
// a scored list. It uses one connected UDP socket per controller, so an
// ICMP port-unreachable from a controller surfaces as a send error: it is
// checked before each pick and costs that controller a point. A send is
// credited once no refusal for it has arrived by the next send. Sender is
// safe for concurrent use.
type Sender struct {
	mu       sync.Mutex
	cfg      SenderConfig
	log      *slog.Logger
	entries  []string
	dests    []*destination
	board    *Scoreboard
	resolved bool
}

// NewSender parses the controller list. Every bad entry is named in the
// returned error; the good ones are kept and the sender is usable.
func NewSender(cfg SenderConfig) (*Sender, error) {
	s := &Sender{cfg: cfg, log: cfg.Logger}
	if s.log == nil {
		s.log = slog.Default()
	}
	return s, s.setControllers(cfg.Controllers)
}

// SetControllers replaces the list when it differs from the current one;
// the new list is resolved on the next send. Scores start afresh.
func (s *Sender) SetControllers(entries []string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if slices.Equal(entries, s.entries) {
		return nil
	}
	return s.setControllers(entries)
}

func (s *Sender) setControllers(entries []string) error {
	s.closeLocked()
	s.entries = slices.Clone(entries)
	var errs []error
	for _, e := range entries {
		c, err := ParseController(e)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		s.dests = append(s.dests, &destination{ctl: c})
	}
	s.board = NewScoreboard(len(s.dests))
	s.board.RecoverEvery = s.cfg.RecoverEvery
	s.resolved = false
	return errors.Join(errs...)
}

func (s *Sender) closeLocked() {
	for _, d := range s.dests {
		if d.conn != nil {
			d.conn.Close()
		}
	}
	s.dests = nil
}

// Close releases the sockets.
func (s *Sender) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closeLocked()
	return nil
}

func (s *Sender) resolve(ctx context.Context) {
	r := s.cfg.Resolver
	if r == nil {
		r = net.DefaultResolver
	}
	for _, d := range s.dests {
		if d.conn != nil {
			continue
		}
		host := d.ctl.Host
		if _, err := netip.ParseAddr(host); err != nil {
			rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			addrs, err := r.LookupNetIP(rctx, "ip", host)
			cancel()
			if err != nil || len(addrs) == 0 {
				s.log.Warn("controller not resolved", "controller", d.ctl.Entry, "reason", fmt.Sprint(err))
				continue
			}
			host = addrs[0].Unmap().String()
		}
		raddr, err := net.ResolveUDPAddr("udp", net.JoinHostPort(host, strconv.Itoa(int(d.ctl.Port))))
		if err != nil {
			s.log.Warn("controller address unusable", "controller", d.ctl.Entry, "reason", err.Error())
			continue
		}
		conn, err := net.DialUDP("udp", nil, raddr)
		if err != nil {
			s.log.Warn("controller socket", "controller", d.ctl.Entry, "reason", err.Error())
			continue
		}
		d.conn, d.addr = conn, raddr.String()
	}
	s.resolved = true
}

// confirm settles the pending sends: a refusal that arrived since costs a
// point, no refusal earns one.
func (s *Sender) confirm() {
	for i, d := range s.dests {
		if !d.pending || d.conn == nil {
			continue
		}
		d.pending = false
		if err := pendingError(d.conn); err != nil {
			d.errs++
			s.board.Record(i, false)
			s.log.Warn("heartbeat refused by controller", "controller", d.ctl.Entry, "reason", err.Error(), "score", s.board.Scores[i])
			continue
		}
		s.board.Record(i, true)
	}
}

// pendingError reads and clears the socket's pending error (SO_ERROR),
// where the kernel leaves an ICMP refusal for a connected UDP socket.
func pendingError(c *net.UDPConn) error {
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var soErr int
	var gerr error
	if err := rc.Control(func(fd uintptr) {
		soErr, gerr = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_ERROR)
	}); err != nil {
		return err
	}
	if gerr != nil {
		return gerr
	}
	if soErr != 0 {
		return syscall.Errno(soErr)
	}
	return nil
}

// Send sends one sealed datagram to the controller the scoreboard picks
// and returns that controller's entry. A datagram larger than MaxDatagram
// is never sent: ErrTooLarge.
func (s *Sender) Send(ctx context.Context, datagram []byte) (string, error) {
	if len(datagram) > MaxDatagram {
		return "", fmt.Errorf("%w: %d bytes", ErrTooLarge, len(datagram))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.resolved {
		s.resolve(ctx)
	}
	s.confirm()
	i := s.board.Pick()
	if i < 0 {
		return "", ErrNoController
	}
	d := s.dests[i]
	if d.conn == nil {
		s.board.Record(i, false)
		d.errs++
		s.resolved = false // try to resolve it again next time
		return d.ctl.Entry, fmt.Errorf("send to %s: %w", d.ctl.Entry, ErrNoController)
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = d.conn.SetWriteDeadline(dl)
	}
	_, err := d.conn.Write(datagram)
	if err != nil {
		d.errs++
		s.board.Record(i, false)
		return d.ctl.Entry, fmt.Errorf("send to %s: %w", d.ctl.Entry, err)
	}
	d.sent++
	d.pending = true
	return d.ctl.Entry, nil
}

// Stats returns one entry per usable controller, in list order.
func (s *Sender) Stats() []ControllerStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]ControllerStats, len(s.dests))
	for i, d := range s.dests {
		out[i] = ControllerStats{Entry: d.ctl.Entry, Addr: d.addr, Score: s.board.Scores[i], Sent: d.sent, Errors: d.errs}
	}
	return out
}
