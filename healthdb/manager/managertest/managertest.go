// Package managertest runs the health manager in-process for tests, on
// a database or an in-memory store seeded with one load balancer.
package managertest

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/octavia-vpp/health/healthdb/manager"
	"github.com/octavia-vpp/health/healthdb/memstore"
	"github.com/octavia-vpp/health/healthdb/shadow"
	"github.com/octavia-vpp/health/heartbeat"
	"github.com/octavia-vpp/health/internal/octaviaconf"
	"github.com/octavia-vpp/health/statsdriver"
)

// SeedOneLB inserts one ACTIVE load balancer with amphora amp-1, listener
// l-1, pool pool-1 and member m-1, all OFFLINE.
func SeedOneLB(t testing.TB, ctx context.Context, url string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	for _, sql := range []string{
		`INSERT INTO load_balancer (id, provisioning_status, operating_status, enabled) VALUES ('lb-1', 'ACTIVE', 'OFFLINE', true)`,
		`INSERT INTO amphora (id, load_balancer_id, status, compute_id, cert_busy) VALUES ('amp-1', 'lb-1', 'ALLOCATED', 'c-1', false)`,
		`INSERT INTO amphora (id, load_balancer_id, status, compute_id, cert_busy) VALUES ('amp-2', 'lb-1', 'ALLOCATED', 'c-2', false)`,
		`INSERT INTO pool (id, load_balancer_id, protocol, lb_algorithm, operating_status, enabled, provisioning_status) VALUES ('pool-1', 'lb-1', 'HTTP', 'ROUND_ROBIN', 'OFFLINE', true, 'ACTIVE')`,
		`INSERT INTO member (id, pool_id, ip_address, protocol_port, operating_status, enabled, provisioning_status, backup) VALUES ('m-1', 'pool-1', '192.0.2.1', 80, 'OFFLINE', true, 'ACTIVE', false)`,
		`INSERT INTO listener (id, load_balancer_id, protocol, protocol_port, provisioning_status, operating_status, enabled, default_pool_id) VALUES ('l-1', 'lb-1', 'HTTP', 80, 'ACTIVE', 'OFFLINE', true, 'pool-1')`,
	} {
		if _, err := conn.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	return conn
}

// MemStores are SeedOneLB's rows in an in-memory store (clock time.Now)
// and an empty statistics sink, ready for Options.Stores.
func MemStores() (*memstore.Store, *statsdriver.MemorySink, *manager.Stores) {
	s := memstore.New(nil)
	s.PutLoadBalancer(memstore.LoadBalancer{ID: "lb-1", ProvisioningStatus: "ACTIVE", OperatingStatus: "OFFLINE", Enabled: true})
	s.PutAmphora(memstore.Amphora{ID: "amp-1", LoadBalancerID: "lb-1", Status: "ALLOCATED", ComputeID: "c-1"})
	s.PutAmphora(memstore.Amphora{ID: "amp-2", LoadBalancerID: "lb-1", Status: "ALLOCATED", ComputeID: "c-2"})
	s.PutPool(memstore.Pool{ID: "pool-1", LoadBalancerID: "lb-1", OperatingStatus: "OFFLINE"})
	s.PutMember(memstore.Member{ID: "m-1", PoolID: "pool-1", OperatingStatus: "OFFLINE", Enabled: true})
	s.PutListener(memstore.Listener{ID: "l-1", LoadBalancerID: "lb-1", Protocol: "HTTP", OperatingStatus: "OFFLINE",
		Enabled: true, DefaultPoolID: "pool-1"})
	sink := statsdriver.NewMemorySink()
	return s, sink, &manager.Stores{Updater: s, Watcher: s, StatsSink: sink, Shadow: s}
}

// TypicalHeartbeat is one V3 heartbeat for SeedOneLB's load balancer.
func TypicalHeartbeat(amphora, memberStatus string) *heartbeat.Message {
	return &heartbeat.Message{AmphoraID: amphora, Seq: 1, HasSeq: true, Version: 3, HasVersion: true,
		Listeners: []heartbeat.Listener{{ID: "l-1", Status: "OPEN", HasStats: true, Stats: heartbeat.Stats{TX: 10, RX: 20, Conns: 1, TotConns: 2}}},
		Pools:     []heartbeat.Pool{{Key: "pool-1:l-1", Status: "UP", Members: []heartbeat.Member{{ID: "m-1", Status: memberStatus}}}}}
}

// Options say how to start the manager under test.
type Options struct {
	// Files are the configuration files, read as serve reads them.
	Files []string
	// LogOutput receives the logs (text), io.Discard by default.
	LogOutput io.Writer
	// ExtraStats are statistics drivers added to the configured ones.
	ExtraStats []statsdriver.Driver
	// Stores, when set, replace PostgreSQL (see MemStores).
	Stores *manager.Stores
	// Reload, when sent to, makes the manager read Files again (SIGHUP).
	Reload <-chan struct{}
	// ShadowDecide replaces the status procedure in shadow mode.
	ShadowDecide shadow.DecideFunc
	// ready is called once the manager listens.
	ready func(*manager.Manager)
}

// Run reads opts.Files and runs the manager until ctx ends, as serve
// does; an error is what New refused.
func Run(ctx context.Context, opts Options) error {
	cfg, err := octaviaconf.Load(opts.Files...)
	if err != nil {
		return err
	}
	out := opts.LogOutput
	if out == nil {
		out = io.Discard
	}
	level := new(slog.LevelVar)
	m, err := manager.New(ctx, cfg, manager.Options{
		Logger: slog.New(slog.NewTextHandler(out, &slog.HandlerOptions{Level: level})), Level: level,
		Reload: opts.Reload,
		Load:   func() (*octaviaconf.Config, error) { return octaviaconf.Load(opts.Files...) },
		Ready:  opts.ready, ExtraStats: opts.ExtraStats, Stores: opts.Stores,
		ShadowDecide: opts.ShadowDecide,
	})
	if err != nil {
		return err
	}
	return m.Run(ctx)
}

// Running is a manager a test started in-process.
type Running struct {
	*manager.Manager
	cancel context.CancelFunc
	result chan error
	once   sync.Once
	err    error
}

// Start runs the manager in-process and returns once it listens. It is
// stopped when the test ends, or earlier by Stop, which returns the
// manager's own result.
func Start(t testing.TB, opts Options) *Running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &Running{cancel: cancel, result: make(chan error, 1)}
	ready := make(chan *manager.Manager, 1)
	opts.ready = func(d *manager.Manager) { ready <- d }
	go func() { r.result <- Run(ctx, opts) }()
	select {
	case r.Manager = <-ready:
	case err := <-r.result:
		cancel()
		t.Fatalf("daemon did not start: %v", err)
	}
	t.Cleanup(func() { r.Stop() })
	return r
}

// Stop ends the manager (SIGTERM's path) and waits for it.
func (r *Running) Stop() error {
	r.once.Do(func() {
		r.cancel()
		select {
		case r.err = <-r.result:
		case <-time.After(30 * time.Second):
			r.err = errors.New("daemon did not stop within 30s")
		}
	})
	return r.err
}

// Exited reports, without waiting, whether the manager has already stopped.
func (r *Running) Exited() (bool, error) {
	select {
	case err := <-r.result:
		r.result <- err // for Stop
		return true, err
	default:
		return false, nil
	}
}
