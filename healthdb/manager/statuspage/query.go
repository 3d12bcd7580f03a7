package statuspage

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// query is what one snapshot asks of the database.
type query struct {
	heartbeatTimeout time.Duration
	buckets          int
	maxLBs           int
	maxMembers       int
	transitionIDs    map[string][]string // entity -> ids whose names to look up
	failoverIDs      []string            // amphorae whose load balancer to look up
}

// dbView is what the database answered.
type dbView struct {
	// now is the database server's clock (naive UTC), which last_update
	// is written with and staleness judged on.
	now time.Time
	// ageBuckets[i] counts amphora_health rows by width_bucket of their age
	// over [0, 2*heartbeat_timeout): 0 is a last_update in the future,
	// buckets+1 is older than the range.
	ageBuckets      []bucketCount
	failoverStopped int
	lbByStatus      map[string]int
	lbs             []dbLB
	listeners       []dbListener
	pools           []dbPool
	members         []dbMember
	amphorae        []dbAmphora
	membersCapped   bool
	names           map[string]string // "entity/id" -> name
	failoverLBs     map[string]dbFailoverLB
}

type bucketCount struct{ total, busy, stale int }

type dbLB struct{ id, name, provisioning, operating string }
type dbListener struct {
	id, lbID, name, protocol, operating, provisioning string
	port                                              int
	enabled                                           bool
	defaultPool                                       string
}
type dbPool struct{ id, lbID, name, protocol, algorithm, operating, provisioning string }
type dbMember struct {
	id, poolID, name, address, operating, provisioning string
	port                                               int
	enabled, backup                                    bool
}
type dbAmphora struct {
	id, lbID, role, status, networkIP string
	lastUpdate                        *time.Time
	busy                              bool
}
type dbFailoverLB struct{ lbID, lbName, status string }

// Listed load balancers: the ones not ONLINE first (through the
// operating_status index), then ONLINE ones in id order (the primary key).
const lbListSQL = `
(SELECT id, COALESCE(name, ''), provisioning_status, operating_status FROM load_balancer
  WHERE operating_status IN ('ERROR', 'DEGRADED', 'OFFLINE', 'DRAINING', 'NO_MONITOR') AND provisioning_status <> 'DELETED'
  ORDER BY operating_status, id LIMIT $1)
UNION ALL
(SELECT id, COALESCE(name, ''), provisioning_status, operating_status FROM load_balancer
  WHERE operating_status NOT IN ('ERROR', 'DEGRADED', 'OFFLINE', 'DRAINING', 'NO_MONITOR') AND provisioning_status <> 'DELETED'
  ORDER BY id LIMIT $1)`

// ageOffsets are the bucket edges of the heartbeat-age histogram as ages,
// oldest first: buckets of 2*timeout/buckets from 2*timeout to 0. The
// database turns them into last_update values on its own clock
// (ageHistogramSQL), once per query: comparing timestamps with
// width_bucket's binary search costs a third of computing every row's age.
func ageOffsets(timeout time.Duration, buckets int) []time.Duration {
	width := 2 * timeout / time.Duration(buckets)
	out := make([]time.Duration, buckets+1)
	for i := range out {
		out[i] = time.Duration(buckets-i) * width
	}
	return out
}

// ageHistogramSQL counts amphora_health rows per age bucket ($1, from
// ageOffsets) and, of those, the busy and the stale ones ($2 is
// heartbeat_timeout), on the database's clock, as the watcher judges them.
// Both bounds are subqueries, computed once (InitPlans), not per row.
const ageHistogramSQL = `
SELECT width_bucket(last_update, ARRAY(
           SELECT (now() AT TIME ZONE 'UTC') - o FROM unnest($1::interval[]) WITH ORDINALITY AS u(o, i) ORDER BY i)),
       count(*), count(*) FILTER (WHERE busy),
       count(*) FILTER (WHERE NOT busy AND last_update < (SELECT (now() AT TIME ZONE 'UTC') - $2::interval))
FROM amphora_health GROUP BY 1`

// ageBucket maps width_bucket over ageThresholds to dbView.ageBuckets:
// 0 (older than the range) -> buckets+1, i -> buckets-i+1 (youngest
// first), buckets+1 (last_update in the future) -> 0.
func ageBucket(widthBucket, buckets int) int {
	switch {
	case widthBucket <= 0:
		return buckets + 1
	case widthBucket > buckets:
		return 0
	}
	return buckets - widthBucket + 1
}

// fetch reads one snapshot's data in two round trips: aggregates, the
// listed load balancers and the names for the recorded events, then the
// children of the listed load balancers.
func fetch(ctx context.Context, pool *pgxpool.Pool, q query) (*dbView, error) {
	v := &dbView{lbByStatus: map[string]int{},
		names: map[string]string{}, failoverLBs: map[string]dbFailoverLB{}}
	v.ageBuckets = make([]bucketCount, q.buckets+2)

	b := &pgx.Batch{}
	b.Queue(`SELECT now() AT TIME ZONE 'UTC'`).QueryRow(func(row pgx.Row) error { return row.Scan(&v.now) })
	b.Queue(ageHistogramSQL, ageOffsets(q.heartbeatTimeout, q.buckets), q.heartbeatTimeout).
		Query(func(rows pgx.Rows) error {
			return eachRow(rows, func() error {
				var bucket int
				var c bucketCount
				if err := rows.Scan(&bucket, &c.total, &c.busy, &c.stale); err != nil {
					return err
				}
				i := ageBucket(bucket, q.buckets)
				v.ageBuckets[i].total += c.total
				v.ageBuckets[i].busy += c.busy
				v.ageBuckets[i].stale += c.stale
				return nil
			})
		})
	countBy := func(sql string, into map[string]int) {
		b.Queue(sql).Query(func(rows pgx.Rows) error {
			return eachRow(rows, func() error {
				var k string
				var n int
				if err := rows.Scan(&k, &n); err != nil {
					return err
				}
				into[k] = n
				return nil
			})
		})
	}
	// Through the status index: FAILOVER_STOPPED rows are few.
	b.Queue(`SELECT count(*) FROM amphora WHERE status = 'FAILOVER_STOPPED'`).QueryRow(func(row pgx.Row) error {
		return row.Scan(&v.failoverStopped)
	})
	countBy(`SELECT operating_status, count(*) FROM load_balancer WHERE provisioning_status <> 'DELETED' GROUP BY 1`, v.lbByStatus)
	b.Queue(lbListSQL, q.maxLBs).Query(func(rows pgx.Rows) error {
		return eachRow(rows, func() error {
			var lb dbLB
			if err := rows.Scan(&lb.id, &lb.name, &lb.provisioning, &lb.operating); err != nil {
				return err
			}
			if len(v.lbs) < q.maxLBs {
				v.lbs = append(v.lbs, lb)
			}
			return nil
		})
	})
	for _, entity := range []string{"load_balancer", "listener", "pool", "member"} {
		ids := q.transitionIDs[entity]
		if len(ids) == 0 {
			continue
		}
		b.Queue(`SELECT id, COALESCE(name, '') FROM `+entity+` WHERE id = ANY($1)`, ids).Query(func(rows pgx.Rows) error {
			return eachRow(rows, func() error {
				var id, name string
				if err := rows.Scan(&id, &name); err != nil {
					return err
				}
				v.names[entity+"/"+id] = name
				return nil
			})
		})
	}
	if len(q.failoverIDs) > 0 {
		b.Queue(`SELECT a.id, COALESCE(a.load_balancer_id, ''), COALESCE(lb.name, ''), a.status
			FROM amphora a LEFT JOIN load_balancer lb ON lb.id = a.load_balancer_id WHERE a.id = ANY($1)`, q.failoverIDs).
			Query(func(rows pgx.Rows) error {
				return eachRow(rows, func() error {
					var id string
					var f dbFailoverLB
					if err := rows.Scan(&id, &f.lbID, &f.lbName, &f.status); err != nil {
						return err
					}
					v.failoverLBs[id] = f
					return nil
				})
			})
	}
	if err := pool.SendBatch(ctx, b).Close(); err != nil {
		return nil, fmt.Errorf("status page: read summary: %w", err)
	}
	if len(v.lbs) == 0 {
		return v, nil
	}

	ids := make([]string, len(v.lbs))
	for i, lb := range v.lbs {
		ids[i] = lb.id
	}
	b = &pgx.Batch{}
	b.Queue(`SELECT id, load_balancer_id, COALESCE(name, ''), protocol, protocol_port, operating_status, provisioning_status,
			enabled, COALESCE(default_pool_id, '')
		FROM listener WHERE load_balancer_id = ANY($1) ORDER BY protocol_port, protocol`, ids).
		Query(func(rows pgx.Rows) error {
			return eachRow(rows, func() error {
				var l dbListener
				if err := rows.Scan(&l.id, &l.lbID, &l.name, &l.protocol, &l.port, &l.operating, &l.provisioning,
					&l.enabled, &l.defaultPool); err != nil {
					return err
				}
				v.listeners = append(v.listeners, l)
				return nil
			})
		})
	b.Queue(`SELECT id, load_balancer_id, COALESCE(name, ''), protocol, lb_algorithm, operating_status, provisioning_status
		FROM pool WHERE load_balancer_id = ANY($1) ORDER BY name, id`, ids).
		Query(func(rows pgx.Rows) error {
			return eachRow(rows, func() error {
				var p dbPool
				if err := rows.Scan(&p.id, &p.lbID, &p.name, &p.protocol, &p.algorithm, &p.operating, &p.provisioning); err != nil {
					return err
				}
				v.pools = append(v.pools, p)
				return nil
			})
		})
	// One more than the cap tells whether the cap cut anything.
	b.Queue(`SELECT m.id, m.pool_id, COALESCE(m.name, ''), COALESCE(m.ip_address, ''), m.protocol_port, m.operating_status,
			m.provisioning_status, m.enabled, m.backup
		FROM member m WHERE m.pool_id IN (SELECT id FROM pool WHERE load_balancer_id = ANY($1))
		ORDER BY m.pool_id, m.ip_address, m.protocol_port LIMIT $2`, ids, q.maxMembers+1).
		Query(func(rows pgx.Rows) error {
			return eachRow(rows, func() error {
				var m dbMember
				if err := rows.Scan(&m.id, &m.poolID, &m.name, &m.address, &m.port, &m.operating, &m.provisioning,
					&m.enabled, &m.backup); err != nil {
					return err
				}
				if len(v.members) == q.maxMembers {
					v.membersCapped = true
					return nil
				}
				v.members = append(v.members, m)
				return nil
			})
		})
	b.Queue(`SELECT a.id, a.load_balancer_id, COALESCE(a.role, ''), a.status, COALESCE(a.lb_network_ip, ''), h.last_update, COALESCE(h.busy, false)
		FROM amphora a LEFT JOIN amphora_health h ON h.amphora_id = a.id
		WHERE a.load_balancer_id = ANY($1) AND a.status <> 'DELETED' ORDER BY a.role, a.id`, ids).
		Query(func(rows pgx.Rows) error {
			return eachRow(rows, func() error {
				var a dbAmphora
				if err := rows.Scan(&a.id, &a.lbID, &a.role, &a.status, &a.networkIP, &a.lastUpdate, &a.busy); err != nil {
					return err
				}
				v.amphorae = append(v.amphorae, a)
				return nil
			})
		})
	if err := pool.SendBatch(ctx, b).Close(); err != nil {
		return nil, fmt.Errorf("status page: read load balancers: %w", err)
	}
	return v, nil
}

func eachRow(rows pgx.Rows, scan func() error) error {
	defer rows.Close()
	for rows.Next() {
		if err := scan(); err != nil {
			return err
		}
	}
	return rows.Err()
}
