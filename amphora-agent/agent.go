package agent

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/octavia-vpp/health/heartbeat"
	"github.com/octavia-vpp/health/heartbeat/udp"
	"github.com/octavia-vpp/health/vpp"
)

// Options configures an Agent.
type Options struct {
	// Config is the loaded amphora-agent.conf. Required.
	Config *Config
	// Dataplane is the VPP layer (vpp.Govpp or the simulator). Required.
	Dataplane vpp.Dataplane
	// Logger; default slog.Default().
	Logger *slog.Logger
	// Registry receives the agent's metrics; nil registers nothing.
	Registry prometheus.Registerer
	// Prober runs one probe; default Probe.
	Prober func(context.Context, ProbeSpec) error
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Jitter is the spread of probe intervals (default 0.1 = ±10%).
	Jitter float64
	// Tick is the period of the housekeeping loop: warm-up, marks, LB file
	// changes, VPP generation (default 250ms).
	Tick time.Duration
}

// memberState is one member's checker.
type memberState struct {
	spec    ProbeSpec
	iv      Intervals
	health  Health
	lastErr string
	cancel  context.CancelFunc
}

// Agent is the amphora agent: it reconciles the LB description to VPP,
// health-checks members and sends heartbeats.
type Agent struct {
	cfg    *Config
	dp     vpp.Dataplane
	log    *slog.Logger
	now    func() time.Time
	probe  func(context.Context, ProbeSpec) error
	jitter float64
	tick   time.Duration
	warmup Warmup
	start  time.Time

	keyring *heartbeat.Keyring
	sender  *udp.Sender

	// hbMu serializes heartbeats that advance the counters, from the
	// counter step to the counter file on disk, so that files are written
	// in step order; the fields below it are the sending heartbeat's,
	// reused from one to the next.
	hbMu     sync.Mutex
	deflater *heartbeat.Deflater
	hbMsg    *heartbeat.Message
	hbText   []byte
	hbWire   []byte
	hbPlans  []listenerPlan
	// rollbackSafe: every version of the counter file a crash of the
	// kernel could bring back lets the next process tell the VPP restart
	// that comes with it (counterWrite). counterSyncs counts the writes
	// that were synced. counterText is the file rendered, counterSaved
	// what was last written (nil: unknown), counterDurable whether the
	// pending write syncs; counterKeys and counterIDs are scratch.
	rollbackSafe   bool
	counterSyncs   int
	counterText    []byte
	counterSaved   []byte
	counterDurable bool
	counterKeys    []vpp.VIPKey
	counterIDs     []string

	// boot is drawn at each start and sent as "boot" with every
	// heartbeat, so that the controller's replay guard can tell a restart,
	// which begins seq at 0 again, from a replay.
	boot   string
	sensor *Sensor
	spool  Spool
	m      *metrics

	kick   chan struct{}
	reload chan chan error
	// ready: READY=1 went to systemd; watchdog pings only follow it.
	ready atomic.Bool

	mu             sync.Mutex
	runCtx         context.Context
	lb             *LB
	lbStamp        fileStamp
	members        map[string]*memberState
	marks          []Mark
	released       map[vpp.VIPKey]bool
	pushed         map[vpp.VIPKey]vpp.VIP
	syncErrs       map[vpp.VIPKey]string // last error per VIP, to log each once
	listenerStates map[string]ListenerState
	counters       *CounterFile
	planInputs     []MemberInput // planLocked's scratch
	// syncPlans and syncBackends are sync's plans, reused from one
	// reconcile to the next; validated caches each planned VIP's
	// validation, syncGen counts reconciles (validatedLocked).
	syncPlans    []listenerPlan
	syncBackends []vpp.Backend
	validated    map[vpp.VIPKey]validatedVIP
	syncGen      uint64
	lastStats    map[string]heartbeat.Stats
	seq          int64
	warm         bool
	configured   bool
	// withheld: the last heartbeat left VPP's listeners out.
	withheld bool
}

type fileStamp struct {
	mod  time.Time
	size int64
}

// New builds an agent. It does not touch the network or VPP.
func New(o Options) (*Agent, error) {
	if o.Config == nil || o.Dataplane == nil {
		return nil, errors.New("agent: Config and Dataplane are required")
	}
	a := &Agent{
		cfg: o.Config, dp: o.Dataplane, log: o.Logger, now: o.Now, probe: o.Prober,
		jitter: o.Jitter, tick: o.Tick,
		kick: make(chan struct{}, 1), reload: make(chan chan error),
		members: map[string]*memberState{}, released: map[vpp.VIPKey]bool{},
		pushed: map[vpp.VIPKey]vpp.VIP{}, syncErrs: map[vpp.VIPKey]string{}, listenerStates: map[string]ListenerState{},
		lastStats: map[string]heartbeat.Stats{},
	}
	if a.log == nil {
		a.log = slog.Default()
	}
	if a.now == nil {
		a.now = time.Now
	}
	if a.probe == nil {
		a.probe = Probe
	}
	if a.jitter == 0 {
		a.jitter = 0.1
	}
	if a.tick <= 0 {
		a.tick = 250 * time.Millisecond
	}
	a.warmup = Warmup{MinDelay: a.cfg.VPP.StartupMinDelay, MaxDelay: a.cfg.VPP.StartupMaxDelay}
	kr, err := heartbeat.NewKeyring(heartbeat.KeyringConfig{Keys: []string{a.cfg.HeartbeatKey}})
	if err != nil {
		return nil, fmt.Errorf("agent: %w", err)
	}
	a.keyring = kr
	level := a.cfg.HeartbeatZlibLevel
	if level == 0 {
		level = DefaultHeartbeatZlibLevel // a Config built in code, not loaded
	}
	if a.deflater, err = heartbeat.NewDeflater(level); err != nil {
		return nil, fmt.Errorf("agent: %w", err)
	}
	var b [16]byte
	if _, err := crand.Read(b[:]); err != nil {
		return nil, fmt.Errorf("agent: boot id: %w", err)
	}
	a.boot = hex.EncodeToString(b[:])
	a.sender, err = udp.NewSender(udp.SenderConfig{Controllers: a.cfg.Controllers, Logger: a.log})
	if err != nil {
		// every bad entry is named; the good ones are used
		a.log.Error("bad controller entries", "reason", err.Error())
	}
	a.sensor = NewSensor(SensorLimits{
		HeartbeatInterval: a.cfg.HeartbeatInterval,
		VPPUnreachable:    a.cfg.VPPUnreachableLimit,
		ShutdownTimeout:   a.cfg.ShutdownTimeout,
	}, a.now)
	a.spool = Spool{Dir: a.cfg.SpoolDir}
	a.start = a.now()
	a.m = newMetrics(a)
	a.loadCounters(o.Dataplane)
	if o.Registry != nil {
		if err := a.m.register(o.Registry); err != nil {
			return nil, fmt.Errorf("agent metrics: %w", err)
		}
	}
	return a, nil
}

// Sensor returns the self-health sensor.
func (a *Agent) Sensor() *Sensor { return a.sensor }

// Spool returns the marks spool.
func (a *Agent) Spool() Spool { return a.spool }

// Sender returns the heartbeat sender.
func (a *Agent) Sender() *udp.Sender { return a.sender }

// SetControllers replaces the controller list (re-resolved when changed).
func (a *Agent) SetControllers(entries []string) error {
	a.m.controllers(entries)
	return a.sender.SetControllers(entries)
}

// SetHeartbeatKey replaces the key heartbeats are sealed with (SIGHUP
// after the config file changed).
func (a *Agent) SetHeartbeatKey(key string) error {
	kr, err := heartbeat.NewKeyring(heartbeat.KeyringConfig{Keys: []string{key}})
	if err != nil {
		return err
	}
	a.mu.Lock()
	a.keyring = kr
	a.mu.Unlock()
	return nil
}

// Kick asks the loop to reconcile now (after a mark changed, for example).
func (a *Agent) Kick() {
	select {
	case a.kick <- struct{}{}:
	default:
	}
}

// Run runs the agent until ctx ends: reconcile, probes, heartbeats. It
// returns nil on a normal shutdown.
func (a *Agent) Run(ctx context.Context) error {
	a.mu.Lock()
	a.runCtx = ctx
	a.mu.Unlock()
	a.log.Info("agent starting", "amphora_id", a.cfg.AmphoraID, "controllers", len(a.cfg.Controllers),
		"heartbeat_interval", a.cfg.HeartbeatInterval, "lb_config_file", a.cfg.VPP.LBConfigFile)
	a.loadLB(false)
	a.refreshMarks()
	// Heartbeats run on their own goroutine: VPP programming below may
	// wait on VPP (5 s per call), and whether this amphora is healthy must
	// never be decided by how long that takes (docs/agent.md, heartbeats).
	hbDone := make(chan struct{})
	go func() {
		defer close(hbDone)
		a.heartbeatLoop(ctx)
	}()
	a.configure(ctx)

	tick := time.NewTicker(a.tick)
	defer tick.Stop()
	full := time.NewTicker(a.cfg.VPP.SyncInterval)
	defer full.Stop()
	wd := WatchdogInterval()
	var lastWD time.Time
	var lastGen uint64
	for {
		select {
		case <-ctx.Done():
			<-hbDone
			a.shutdown()
			return nil
		case <-tick.C:
			if a.lbFileChanged() {
				a.loadLB(false)
			}
			a.refreshMarks()
			if !a.configured {
				a.configure(ctx)
			}
			a.observeVPP()
			if st := a.dp.State(); st.Generation != lastGen {
				// The layer has re-pushed the desired state; resync
				// so that anything changed meanwhile is applied.
				lastGen = st.Generation
				a.sync(ctx, true)
			} else {
				a.sync(ctx, false)
			}
			h := a.sensor.Health()
			a.m.setHealthy(h.Healthy)
			if wd > 0 && h.Healthy && a.ready.Load() && a.now().Sub(lastWD) >= wd {
				lastWD = a.now()
				if _, err := Notify("WATCHDOG=1"); err != nil {
					a.log.Warn("sd_notify failed", "reason", err.Error())
				}
			}
		case <-a.kick:
			a.refreshMarks()
			a.sync(ctx, false)
		case <-full.C:
			a.sync(ctx, true)
		case ch := <-a.reload:
			ch <- a.loadLB(true)
			a.sync(ctx, false)
		}
	}
}

func (a *Agent) shutdown() {
	a.sensor.ShuttingDown()
	_, _ = Notify("STOPPING=1")
	a.mu.Lock()
	for id, ms := range a.members {
		ms.cancel()
		delete(a.members, id)
	}
	a.mu.Unlock()
	a.sender.Close()
	a.log.Info("agent stopped")
}

func (a *Agent) configure(ctx context.Context) {
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := a.dp.Configure(cctx, a.cfg.LBConf()); err != nil {
		// desired state is remembered; it is applied on reconnect
		a.log.Warn("lb conf not applied", "reason", err.Error())
		if !errors.Is(err, vpp.ErrNotConnected) {
			return
		}
	}
	a.configured = true
}
