package healthdb

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/octavia-vpp/health/heartbeat"
)

// The invariant: applying a sequence of heartbeats in batches gives the
// same final rows as applying it one heartbeat at a time. Each random
// topology is inserted twice into one database, under the prefixes "o"
// (one by one) and "b" (batches of 1 to 64), and the two copies are
// compared row by row afterwards. updated_at is left out: a status that a
// batch changes and changes back is, by design, not written at all.

const propertySequences = 240

type genLB struct {
	id, provisioning, operating string
	enabled                     bool
	amphorae                    []string
	listeners                   []genListener
	pools                       []genPool
}

type genListener struct {
	id, protocol, operating, defaultPool string
	enabled                              bool
}

type genPool struct {
	id, operating string
	members       []genMember
}

type genMember struct {
	id, operating string
	enabled       bool
}

type genWorld struct {
	lbs        []genLB
	zombies    []string // amphorae with a row but no live load balancer
	healthRows map[string]bool
	byAmphora  map[string]*genLB
}

var (
	genOperating   = []string{"ONLINE", "OFFLINE", "DEGRADED", "ERROR", "NO_MONITOR", "DRAINING"}
	genProvision   = []string{"ACTIVE", "ACTIVE", "ACTIVE", "PENDING_UPDATE", "ERROR", "DELETED"}
	genProtocols   = []string{"HTTP", "TCP", "UDP", "UDP", "HTTPS", "SCTP"}
	genListenerRep = []string{"OPEN", "OPEN", "OPEN", "FULL", "STOP", "DOWN"}
	genPoolRep     = []string{"UP", "UP", "UP", "DOWN", "NOLB"}
	genMemberRep   = []string{"UP", "UP", "DOWN", "DRAIN", "MAINT", "no check", "UP 1/3", "DOWN 1/2", "RESTARTING", "MAINT (via p/s)", "NOLB"}
)

func pick[T any](r *rand.Rand, s []T) T { return s[r.IntN(len(s))] }

func generateWorld(r *rand.Rand) *genWorld {
	w := &genWorld{healthRows: map[string]bool{}, byAmphora: map[string]*genLB{}}
	for i := range 1 + r.IntN(3) {
		lb := genLB{id: fmt.Sprintf("lb%d", i), provisioning: pick(r, genProvision),
			operating: pick(r, genOperating[:4]), enabled: r.IntN(5) > 0}
		for a := range 1 + r.IntN(2) { // SINGLE or ACTIVE_STANDBY
			lb.amphorae = append(lb.amphorae, fmt.Sprintf("a%d-%d", i, a))
		}
		for p := range r.IntN(4) {
			pool := genPool{id: fmt.Sprintf("p%d-%d", i, p), operating: pick(r, genOperating)}
			for m := range r.IntN(4) {
				pool.members = append(pool.members, genMember{id: fmt.Sprintf("m%d-%d-%d", i, p, m),
					operating: pick(r, genOperating), enabled: r.IntN(4) > 0})
			}
			lb.pools = append(lb.pools, pool)
		}
		for l := range r.IntN(4) {
			gl := genListener{id: fmt.Sprintf("l%d-%d", i, l), protocol: pick(r, genProtocols),
				operating: pick(r, genOperating[:4]), enabled: r.IntN(5) > 0}
			if len(lb.pools) > 0 && r.IntN(3) > 0 {
				gl.defaultPool = pick(r, lb.pools).id
			}
			lb.listeners = append(lb.listeners, gl)
		}
		w.lbs = append(w.lbs, lb)
	}
	for i := range w.lbs {
		for _, a := range w.lbs[i].amphorae {
			w.byAmphora[a] = &w.lbs[i]
			if r.IntN(2) == 0 {
				w.healthRows[a] = r.IntN(3) == 0 // busy
			}
		}
	}
	w.zombies = []string{"z-noLB", "z-deleted", "z-deletef"}
	return w
}

// insert writes the world under a prefix, in one round trip.
func (w *genWorld) insert(ctx context.Context, db *pgxpool.Pool, prefix string) error {
	b := &pgx.Batch{}
	port := 0
	for _, lb := range w.lbs {
		b.Queue(`INSERT INTO load_balancer (id, provisioning_status, operating_status, enabled) VALUES ($1, $2, $3, $4)`,
			prefix+lb.id, lb.provisioning, lb.operating, lb.enabled)
		for _, a := range lb.amphorae {
			b.Queue(`INSERT INTO amphora (id, load_balancer_id, status, compute_id, cert_busy) VALUES ($1, $2, 'ALLOCATED', $3, false)`,
				prefix+a, prefix+lb.id, prefix+"c"+a)
		}
		for _, p := range lb.pools {
			b.Queue(`INSERT INTO pool (id, load_balancer_id, protocol, lb_algorithm, operating_status, enabled, provisioning_status)
				VALUES ($1, $2, 'HTTP', 'ROUND_ROBIN', $3, true, 'ACTIVE')`, prefix+p.id, prefix+lb.id, p.operating)
			for _, m := range p.members {
				port++
				b.Queue(`INSERT INTO member (id, pool_id, ip_address, protocol_port, operating_status, enabled, provisioning_status, backup)
					VALUES ($1, $2, '192.0.2.1', $3, $4, $5, 'ACTIVE', false)`, prefix+m.id, prefix+p.id, port, m.operating, m.enabled)
			}
		}
		for _, l := range lb.listeners {
			port++
			var defaultPool any
			if l.defaultPool != "" {
				defaultPool = prefix + l.defaultPool
			}
			b.Queue(`INSERT INTO listener (id, load_balancer_id, protocol, protocol_port, provisioning_status, operating_status, enabled, default_pool_id)
				VALUES ($1, $2, $3, $4, 'ACTIVE', $5, $6, $7)`, prefix+l.id, prefix+lb.id, l.protocol, port, l.operating, l.enabled, defaultPool)
		}
	}
	b.Queue(`INSERT INTO amphora (id, status, compute_id, cert_busy) VALUES ($1, 'ALLOCATED', $2, false)`, prefix+"z-noLB", prefix+"cz-noLB")
	b.Queue(`INSERT INTO amphora (id, status, compute_id, cert_busy) VALUES ($1, 'DELETED', $2, false)`, prefix+"z-deleted", prefix+"cz-deleted")
	b.Queue(`INSERT INTO amphora (id, status, compute_id, cert_busy) VALUES ($1, 'DELETED', $2, false)`, prefix+"z-deletef", prefix+"cz-deletef")
	for a, busy := range w.healthRows {
		b.Queue(`INSERT INTO amphora_health (amphora_id, last_update, busy) VALUES ($1, $2, $3)`, prefix+a, now.Add(-time.Hour), busy)
	}
	return db.SendBatch(ctx, b).Close()
}

// message draws one heartbeat, with logical ids.
func (w *genWorld) message(r *rand.Rand) *heartbeat.Message {
	m := &heartbeat.Message{RecvTime: now, Listeners: []heartbeat.Listener{}}
	var lb *genLB
	switch n := r.IntN(20); {
	case n == 0:
		m.AmphoraID = "unknown"
	case n <= 2:
		m.AmphoraID = pick(r, w.zombies)
	default:
		lb = &w.lbs[r.IntN(len(w.lbs))]
		m.AmphoraID = pick(r, lb.amphorae)
	}
	if v := r.IntN(4); v > 0 {
		m.Version, m.HasVersion = int64(v), true
	}
	if r.IntN(25) == 0 {
		m.RecvTime = now.Add(-rules.HeartbeatInterval)
	}
	if lb == nil {
		lb = &w.lbs[0] // a zombie may still report some listener ids
	}
	pools := func(listenerID string) []heartbeat.Pool {
		out := []heartbeat.Pool{}
		for _, p := range lb.pools {
			if r.IntN(10) < 3 {
				continue
			}
			key := p.id
			if m.Version >= 2 && r.IntN(4) > 0 {
				key = p.id + ":" + listenerID
			}
			rp := heartbeat.Pool{Key: key, Status: pick(r, genPoolRep), Members: []heartbeat.Member{}}
			for _, mem := range p.members {
				if r.IntN(5) > 0 {
					rp.Members = append(rp.Members, heartbeat.Member{ID: mem.id, Status: pick(r, genMemberRep)})
				}
			}
			out = append(out, rp)
			if r.IntN(8) == 0 { // the same pool under a second listener's key
				dup := rp
				dup.Key = p.id + ":other"
				dup.Status = pick(r, genPoolRep)
				out = append(out, dup)
			}
		}
		return out
	}
	for _, l := range lb.listeners {
		if r.IntN(10) < 3 {
			continue
		}
		hl := heartbeat.Listener{ID: l.id, Status: pick(r, genListenerRep), HasStats: true}
		if m.Version < 2 && r.IntN(12) > 0 {
			hl.HasPools, hl.Pools = true, pools(l.id)
		}
		m.Listeners = append(m.Listeners, hl)
	}
	if r.IntN(10) == 0 {
		m.Listeners = append(m.Listeners, heartbeat.Listener{ID: "l-unknown", Status: "OPEN"})
	}
	if m.Version >= 2 {
		listenerID := "none"
		if len(lb.listeners) > 0 {
			listenerID = pick(r, lb.listeners).id
		}
		m.Pools = pools(listenerID)
	}
	return m
}

// prefixed copies a message with every id under prefix.
func prefixed(m *heartbeat.Message, prefix string) *heartbeat.Message {
	c := *m
	c.AmphoraID = prefix + m.AmphoraID
	pools := func(ps []heartbeat.Pool) []heartbeat.Pool {
		if ps == nil {
			return nil
		}
		out := make([]heartbeat.Pool, len(ps))
		for i, p := range ps {
			out[i] = heartbeat.Pool{Key: prefix + p.Key, Status: p.Status, Members: make([]heartbeat.Member, len(p.Members))}
			for j, mem := range p.Members {
				out[i].Members[j] = heartbeat.Member{ID: prefix + mem.ID, Status: mem.Status}
			}
		}
		return out
	}
	c.Listeners = make([]heartbeat.Listener, len(m.Listeners))
	for i, l := range m.Listeners {
		l.ID = prefix + l.ID
		l.Pools = pools(l.Pools)
		c.Listeners[i] = l
	}
	c.Pools = pools(m.Pools)
	return &c
}

// suffixDeleter fails for compute ids ending in "f", the same way in both
// copies.
type suffixDeleter struct{}

func (suffixDeleter) DeleteCompute(_ context.Context, id string) error {
	if strings.HasSuffix(id, "f") {
		return errors.New("delete failed")
	}
	return nil
}

// snapshot reads every row the health manager writes, ids without prefix.
func snapshot(ctx context.Context, t *testing.T, db *pgxpool.Pool, prefix string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, table := range []string{"load_balancer", "listener", "pool", "member"} {
		rows, err := db.Query(ctx, `SELECT id, operating_status FROM `+table+` WHERE id LIKE $1 || '%'`, prefix)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var id, status string
			if err := rows.Scan(&id, &status); err != nil {
				t.Fatal(err)
			}
			out[table+" "+strings.TrimPrefix(id, prefix)] = status
		}
		rows.Close()
	}
	rows, err := db.Query(ctx, `SELECT amphora_id, busy, last_update FROM amphora_health WHERE amphora_id LIKE $1 || '%'`, prefix)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var busy bool
		var last time.Time
		if err := rows.Scan(&id, &busy, &last); err != nil {
			t.Fatal(err)
		}
		out["amphora_health "+strings.TrimPrefix(id, prefix)] = fmt.Sprintf("busy=%v refreshed=%v", busy, !last.Equal(now.Add(-time.Hour).UTC().Truncate(time.Microsecond)))
	}
	return out
}

func TestBatchesEqualOneByOne(t *testing.T) {
	const shards = 4
	for shard := range shards {
		t.Run(fmt.Sprintf("shard%d", shard), func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			db := openDB(t)
			u := newTestUpdater(t, db, suffixDeleter{}, now)
			for seq := shard; seq < propertySequences; seq += shards {
				r := rand.New(rand.NewPCG(uint64(seq), 0x5eed))
				world := generateWorld(r)
				one, batched := fmt.Sprintf("o%d-", seq), fmt.Sprintf("b%d-", seq)
				if err := world.insert(ctx, db, one); err != nil {
					t.Fatalf("sequence %d: insert: %v", seq, err)
				}
				if err := world.insert(ctx, db, batched); err != nil {
					t.Fatalf("sequence %d: insert: %v", seq, err)
				}
				msgs := make([]*heartbeat.Message, 1+r.IntN(80))
				for i := range msgs {
					msgs[i] = world.message(r)
				}
				for _, m := range msgs {
					if _, err := u.ApplyBatch(ctx, []*heartbeat.Message{prefixed(m, one)}); err != nil {
						t.Fatalf("sequence %d: %v", seq, err)
					}
				}
				var sizes []int
				for i := 0; i < len(msgs); {
					n := min(1+r.IntN(64), len(msgs)-i)
					batch := make([]*heartbeat.Message, n)
					for j := range batch {
						batch[j] = prefixed(msgs[i+j], batched)
					}
					if _, err := u.ApplyBatch(ctx, batch); err != nil {
						t.Fatalf("sequence %d: %v", seq, err)
					}
					sizes = append(sizes, n)
					i += n
				}
				u.zombies.wait() // failed zombie deletes write when they end
				a, b := snapshot(ctx, t, db, one), snapshot(ctx, t, db, batched)
				if !reflect.DeepEqual(a, b) {
					for k := range a {
						if a[k] != b[k] {
							t.Errorf("sequence %d (%d messages, batches %v): %s is %q one by one, %q in batches", seq, len(msgs), sizes, k, a[k], b[k])
						}
					}
					for k := range b {
						if _, ok := a[k]; !ok {
							t.Errorf("sequence %d: %s only in batches: %q", seq, k, b[k])
						}
					}
					t.FailNow()
				}
			}
		})
	}
}
