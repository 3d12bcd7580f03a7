package healthdb

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// octaviaHealthQuery is the query of Octavia 11's
// AmphoraRepository.get_lb_for_health_update, word for word. Octavia's
// status procedure visits listeners, pools and members in the order their
// rows first appear in its result, which the plan decides. That order is
// the only thing deciding how far a heartbeat that Octavia applies only in
// part gets (docs/deviations.md), so for such a heartbeat the updater asks
// the database the same question, the same way (parameters interpolated
// into the text, as psycopg2 does), and decides again in that order.
const octaviaHealthQuery = "SELECT load_balancer.id, load_balancer.enabled, " +
	"load_balancer.provisioning_status AS lb_prov_status, " +
	"load_balancer.operating_status AS lb_op_status, " +
	"listener.id AS list_id, " +
	"listener.operating_status AS list_op_status, " +
	"listener.enabled AS list_enabled, " +
	"listener.protocol AS list_protocol, " +
	"pool.id AS pool_id, " +
	"pool.operating_status AS pool_op_status, " +
	"member.id AS member_id, " +
	"member.operating_status AS mem_op_status from " +
	"amphora JOIN load_balancer ON " +
	"amphora.load_balancer_id = load_balancer.id LEFT JOIN " +
	"listener ON load_balancer.id = listener.load_balancer_id " +
	"LEFT JOIN pool ON load_balancer.id = pool.load_balancer_id " +
	"LEFT JOIN member ON pool.id = member.pool_id WHERE " +
	"amphora.id = $1 AND amphora.status != $2 AND " +
	"load_balancer.provisioning_status != $3;"

// healthOrder is the order in which Octavia's procedure would visit one
// amphora's listeners, pools and each pool's members.
type healthOrder struct {
	listeners, pools []string
	members          map[string][]string
}

// octaviaOrder runs Octavia's health query for one amphora and returns the
// order of first appearance of each id, as Octavia's dicts keep it.
func (s *Store) octaviaOrder(ctx context.Context, amphoraID string) (*healthOrder, error) {
	rows, err := s.pool.Query(ctx, octaviaHealthQuery, pgx.QueryExecModeSimpleProtocol, amphoraID, "DELETED", "DELETED")
	if err != nil {
		return nil, fmt.Errorf("octavia's health query for %s: %w", amphoraID, err)
	}
	defer rows.Close()
	o := &healthOrder{members: map[string][]string{}}
	seenListener, seenPool, seenMember := map[string]bool{}, map[string]bool{}, map[string]bool{}
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			return nil, err
		}
		listenerID, _ := vals[4].(string)
		poolID, _ := vals[8].(string)
		memberID, _ := vals[10].(string)
		if listenerID != "" && !seenListener[listenerID] {
			seenListener[listenerID] = true
			o.listeners = append(o.listeners, listenerID)
		}
		if poolID != "" && !seenPool[poolID] {
			seenPool[poolID] = true
			o.pools = append(o.pools, poolID)
		}
		if poolID != "" && memberID != "" && !seenMember[memberID] {
			seenMember[memberID] = true
			o.members[poolID] = append(o.members[poolID], memberID)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("octavia's health query for %s: %w", amphoraID, err)
	}
	return o, nil
}

// inOrder returns a copy of lb whose listeners, pools and members follow
// o; anything o does not name keeps its place after the ones it does.
func (lb *LoadBalancer) inOrder(o *healthOrder) *LoadBalancer {
	c := *lb
	c.Listeners = reordered(lb.Listeners, o.listeners, func(l *Listener) string { return l.ID })
	c.Pools = reordered(lb.Pools, o.pools, func(p *Pool) string { return p.ID })
	for i := range c.Pools {
		p := &c.Pools[i]
		p.Members = reordered(p.Members, o.members[p.ID], func(m *Member) string { return m.ID })
	}
	return &c
}

func reordered[T any](items []T, order []string, idOf func(*T) string) []T {
	out := make([]T, 0, len(items))
	pos := make(map[string]int, len(items))
	for i := range items {
		pos[idOf(&items[i])] = i
	}
	taken := make([]bool, len(items))
	for _, id := range order {
		if i, ok := pos[id]; ok && !taken[i] {
			taken[i] = true
			out = append(out, items[i])
		}
	}
	for i := range items {
		if !taken[i] {
			out = append(out, items[i])
		}
	}
	return out
}
