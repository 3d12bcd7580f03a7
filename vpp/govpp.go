package vpp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.fd.io/govpp/adapter"
	"go.fd.io/govpp/adapter/socketclient"
	"go.fd.io/govpp/api"
)

// GovppConfig configures a Govpp dataplane. Zero values take the defaults
// given with each field.
type GovppConfig struct {
	// APISocket is VPP's binary API socket. Default /run/vpp/api.sock.
	APISocket string
	// ClientName shows in `show api clients`. Default "amphora-agent".
	ClientName string
	// Dialect is "auto" (default), "binapi" or "cli". Auto picks the
	// binary API only on lb API >= 1.2.0 (see selectDialect).
	Dialect string
	// Stats opens the stats socket. Nil: the lb packet counters are read
	// from `show lb vips verbose` instead, and there are no route counters
	// and no boot time.
	Stats StatsDialer
	// PingInterval is how often the connection is checked. Default 5 s.
	PingInterval time.Duration
	// ScrapeInterval is how often counters are read. Default 5 s.
	ScrapeInterval time.Duration
	// CallTimeout bounds every VPP call whose context has no earlier
	// deadline, the ping included. Default 5 s.
	CallTimeout time.Duration
	// ReconnectMin and ReconnectMax bound the reconnect backoff, which
	// doubles after each failed attempt. Defaults 250 ms and 10 s.
	ReconnectMin, ReconnectMax time.Duration
	// Logger receives the layer's events. Default slog.Default().
	Logger *slog.Logger
	// NewAdapter builds the binary API adapter for one connection attempt.
	// Default: socketclient on APISocket. Tests inject govpp's mock.
	NewAdapter func() adapter.VppAPI
}

func (c GovppConfig) withDefaults() GovppConfig {
	if c.APISocket == "" {
		c.APISocket = adapter.DefaultBinapiSocket
	}
	if c.ClientName == "" {
		c.ClientName = "amphora-agent"
	}
	if c.PingInterval <= 0 {
		c.PingInterval = 5 * time.Second
	}
	if c.ScrapeInterval <= 0 {
		c.ScrapeInterval = 5 * time.Second
	}
	if c.CallTimeout <= 0 {
		c.CallTimeout = 5 * time.Second
	}
	if c.ReconnectMin <= 0 {
		c.ReconnectMin = 250 * time.Millisecond
	}
	if c.ReconnectMax < c.ReconnectMin {
		c.ReconnectMax = max(10*time.Second, c.ReconnectMin)
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.NewAdapter == nil {
		path, name := c.APISocket, c.ClientName
		c.NewAdapter = func() adapter.VppAPI {
			sc := socketclient.NewVppClient(path)
			sc.SetClientName(name)
			return sc
		}
	}
	return c
}

// Govpp is the Dataplane on a real VPP. Call Run to start its supervisor:
// one goroutine that owns the API and stats sockets, pings VPP, reconnects
// forever with backoff, re-pushes the desired state after every reconnect
// or VPP restart, and scrapes counters.
type Govpp struct {
	cfg GovppConfig
	log *slog.Logger

	// mu serialises every write sequence, re-push and scrape, and guards
	// the fields below it.
	mu          sync.Mutex
	conn        api.Connection
	stats       StatsSource
	prog        programmer
	generation  uint64
	bootTime    time.Time
	desiredConf *Conf
	desired     map[VIPKey]VIP
	removals    map[VIPKey]bool      // removed while disconnected, to delete on the next push
	epoch       map[VIPKey]uint64    // bumped on every add/del of the VIP
	routeIndex  map[netip.Prefix]int // FIB stats index per VIP prefix, this generation
	tracker     *counterTracker

	state    atomic.Pointer[State]
	counters atomic.Pointer[Counters]
	tel      *telemetry
	kick     chan struct{}
	running  atomic.Bool
}

var _ Dataplane = (*Govpp)(nil)

// NewGovpp builds a Govpp. It does not connect: call Run.
func NewGovpp(cfg GovppConfig) (*Govpp, error) {
	cfg = cfg.withDefaults()
	if _, err := selectDialect(cfg.Dialect, nil, nil); err != nil {
		return nil, fmt.Errorf("vpp config: %w", err)
	}
	g := &Govpp{
		cfg:        cfg,
		log:        cfg.Logger.With("component", "vpp"),
		desired:    make(map[VIPKey]VIP),
		removals:   make(map[VIPKey]bool),
		epoch:      make(map[VIPKey]uint64),
		routeIndex: make(map[netip.Prefix]int),
		tracker:    newCounterTracker(),
		tel:        newTelemetry(),
		kick:       make(chan struct{}, 1),
	}
	g.state.Store(&State{})
	return g, nil
}

// pushAllLocked re-applies the whole desired state, in key order.
func (g *Govpp) pushAllLocked(ctx context.Context) error {
	g.tel.repush()
	var errs []error
	if g.desiredConf != nil {
		if err := g.prog.conf(ctx, *g.desiredConf); err != nil {
			errs = append(errs, fmt.Errorf("lb conf: %w", err))
			if isTransport(err) {
				return errors.Join(errs...)
			}
		}
	}
	if len(g.desired) == 0 && len(g.removals) == 0 {
		return errors.Join(errs...)
	}
	actual, err := g.actualLocked(ctx)
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	for _, k := range slices.SortedFunc(maps.Keys(g.removals), compareKeys) {
		have, ok := actual[k]
		if ok {
			v := VIP{Key: k, Encap: have.Encap, SrcIPSticky: have.SrcIPSticky, FlowTableLength: have.FlowTableLength}
			if err := g.applyLocked(ctx, v, planRemove(&have)); err != nil {
				errs = append(errs, fmt.Errorf("remove vip %v: %w", k, err))
				if isTransport(err) {
					return errors.Join(errs...)
				}
				continue
			}
			g.tel.removed()
		}
		delete(g.removals, k)
	}
	keys := slices.SortedFunc(maps.Keys(g.desired), compareKeys)
	for _, k := range keys {
		v := g.desired[k]
		var have *VIPStatus
		if st, ok := actual[k]; ok {
			have = &st
		}
		ops, res := planSync(v, have, g.prog.weighted())
		if err := g.applyLocked(ctx, v, ops); err != nil {
			errs = append(errs, fmt.Errorf("re-push vip %v: %w", k, err))
			if isTransport(err) {
				break
			}
		}
		g.tel.sync(res)
	}
	return errors.Join(errs...)
}

// actualLocked reads every VIP VPP has, by key.
func (g *Govpp) actualLocked(ctx context.Context) (map[VIPKey]VIPStatus, error) {
	vips, err := readVIPs(ctx, g)
	if err != nil {
		return nil, err
	}
	m := make(map[VIPKey]VIPStatus, len(vips))
	for _, v := range vips {
		st := statusOf(v)
		m[st.Key] = st
	}
	return m, nil
}

// applyLocked runs a plan for VIP v, stopping at the first error.
func (g *Govpp) applyLocked(ctx context.Context, v VIP, ops []op) error {
	for _, o := range ops {
		var err error
		switch o.kind {
		// The epoch marks a VIP whose counters VPP started again from
		// zero; only a change VPP confirmed moves it, since counting a
		// VIP that kept its counters as new would count them twice.
		case opAddVIP:
			err = g.prog.addVIP(ctx, v)
			if err == nil {
				g.epoch[v.Key]++
			}
			delete(g.routeIndex, v.Key.Prefix)
		case opDelVIP:
			err = g.prog.delVIP(ctx, v)
			if err == nil {
				g.epoch[v.Key]++
			}
			delete(g.routeIndex, v.Key.Prefix)
		case opAddAS:
			err = g.prog.addAS(ctx, v.Key, o.addr, o.weight)
		case opDelAS:
			err = g.prog.delAS(ctx, v.Key, o.addr, o.flush)
		case opSetWeight:
			err = g.prog.setWeight(ctx, v.Key, o.addr, o.weight, o.flush)
		}
		if err != nil {
			return fmt.Errorf("%v: %w", o, err)
		}
	}
	return nil
}

func (g *Govpp) notConnected(what string) error {
	return fmt.Errorf("%s: %w", what, ErrNotConnected)
}

// Configure implements Dataplane.
func (g *Govpp) Configure(ctx context.Context, c Conf) error {
	c, err := c.withDefaults()
	if err != nil {
		return err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	prev := g.desiredConf
	g.desiredConf = &c
	if g.prog == nil {
		return g.notConnected("lb conf")
	}
	if err := g.prog.conf(ctx, c); err != nil {
		if !isTransport(err) {
			g.desiredConf = prev
		}
		return fmt.Errorf("lb conf: %w", err)
	}
	return nil
}

// SyncVIP implements Dataplane.
func (g *Govpp) SyncVIP(ctx context.Context, v VIP) (SyncResult, error) {
	v, err := v.Validate()
	if err != nil {
		return SyncResult{}, err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	prev, hadPrev := g.desired[v.Key]
	g.desired[v.Key] = v
	delete(g.removals, v.Key)
	if g.prog == nil {
		return SyncResult{}, g.notConnected("sync vip " + v.Key.String())
	}
	actual, err := g.actualLocked(ctx)
	if err != nil {
		return SyncResult{}, fmt.Errorf("sync vip %v: %w", v.Key, err)
	}
	var have *VIPStatus
	if st, ok := actual[v.Key]; ok {
		have = &st
	}
	ops, res := planSync(v, have, g.prog.weighted())
	if err := g.applyLocked(ctx, v, ops); err != nil {
		if errors.Is(err, ErrExists) || errors.Is(err, ErrInvalid) {
			// VPP refused the VIP itself: do not keep re-pushing it.
			if hadPrev {
				g.desired[v.Key] = prev
			} else {
				delete(g.desired, v.Key)
			}
		}
		return res, fmt.Errorf("sync vip %v: %w", v.Key, err)
	}
	g.tel.sync(res)
	if res.Changed() {
		g.log.Info("vip synced", "vip", v.Key.String(), "created", res.Created, "recreated", res.Recreated,
			"added", res.Added, "removed", res.Removed, "reweighted", res.Reweighted)
	}
	return res, nil
}

// RemoveVIP implements Dataplane.
func (g *Govpp) RemoveVIP(ctx context.Context, k VIPKey) error {
	k = k.normalize()
	g.mu.Lock()
	defer g.mu.Unlock()
	v, wasDesired := g.desired[k]
	delete(g.desired, k)
	if g.prog == nil {
		// Remembered and done on the next connection.
		g.removals[k] = true
		if !wasDesired {
			return fmt.Errorf("remove vip %v: %w", k, ErrNotFound)
		}
		return g.notConnected("remove vip " + k.String())
	}
	actual, err := g.actualLocked(ctx)
	if err != nil {
		return fmt.Errorf("remove vip %v: %w", k, err)
	}
	have, ok := actual[k]
	if !ok {
		if wasDesired {
			return nil
		}
		return fmt.Errorf("remove vip %v: %w", k, ErrNotFound)
	}
	if !wasDesired {
		v = VIP{Key: k, Encap: have.Encap, SrcIPSticky: have.SrcIPSticky, FlowTableLength: have.FlowTableLength}
	}
	if err := g.applyLocked(ctx, v, planRemove(&have)); err != nil {
		return fmt.Errorf("remove vip %v: %w", k, err)
	}
	g.tel.removed()
	g.log.Info("vip removed", "vip", k.String())
	return nil
}

// VIPs implements Dataplane.
func (g *Govpp) VIPs(ctx context.Context) ([]VIPStatus, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.prog == nil {
		return nil, g.notConnected("list vips")
	}
	actual, err := g.actualLocked(ctx)
	if err != nil {
		return nil, err
	}
	out := slices.Collect(maps.Values(actual))
	slices.SortFunc(out, func(a, b VIPStatus) int { return compareKeys(a.Key, b.Key) })
	return out, nil
}
