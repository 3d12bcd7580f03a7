package mysqlstore

import (
	"context"
	"database/sql"
	"time"

	"github.com/octavia-vpp/health/healthdb"
)

// The reads of shadow mode (healthdb/shadow): plain SELECTs, which a
// read-only session and a user granted SELECT alone may run.

// ReadAmphoraHealth returns the amphora_health rows of the given amphorae
// (all rows when ids is nil) and the database's time (naive UTC).
func (s *Store) ReadAmphoraHealth(ctx context.Context, amphoraIDs []string) ([]healthdb.AmphoraHealthRow, time.Time, error) {
	q := `SELECT h.amphora_id, COALESCE(a.status, ''), h.last_update, h.busy, COALESCE(lb.provisioning_status, ''), ` + dbNow + `
FROM amphora_health h LEFT JOIN amphora a ON a.id = h.amphora_id LEFT JOIN load_balancer lb ON lb.id = a.load_balancer_id`
	var args []any
	if amphoraIDs != nil {
		ids := storableIDs(amphoraIDs)
		if len(ids) == 0 {
			var now time.Time
			err := s.db.QueryRowContext(ctx, `SELECT `+dbNow).Scan(&now)
			return nil, now, err
		}
		q += ` WHERE h.amphora_id IN (` + placeholders(len(ids)) + `)`
		args = anys(ids)
	}
	q += ` ORDER BY h.amphora_id`
	var out []healthdb.AmphoraHealthRow
	var now time.Time
	err := s.query(ctx, q, args, func(r *sql.Rows) error {
		var row healthdb.AmphoraHealthRow
		if err := r.Scan(&row.AmphoraID, &row.Status, &row.LastUpdate, &row.Busy, &row.LBProvisioningStatus, &now); err != nil {
			return err
		}
		out = append(out, row)
		return nil
	})
	if err == nil && len(out) == 0 {
		err = s.db.QueryRowContext(ctx, `SELECT `+dbNow).Scan(&now)
	}
	return out, now, err
}

// ReadListenerStatistics returns the listener_statistics rows of the given
// amphorae.
func (s *Store) ReadListenerStatistics(ctx context.Context, amphoraIDs []string) ([]healthdb.ListenerStatsRow, error) {
	ids := storableIDs(amphoraIDs)
	if len(ids) == 0 {
		return nil, nil
	}
	var out []healthdb.ListenerStatsRow
	err := s.query(ctx, `SELECT listener_id, amphora_id, bytes_in, bytes_out, active_connections, total_connections, request_errors
FROM listener_statistics WHERE amphora_id IN (`+placeholders(len(ids))+`) ORDER BY listener_id`, anys(ids),
		func(r *sql.Rows) error {
			var row healthdb.ListenerStatsRow
			if err := r.Scan(&row.ListenerID, &row.AmphoraID, &row.BytesIn, &row.BytesOut, &row.ActiveConns,
				&row.TotalConns, &row.RequestErrors); err != nil {
				return err
			}
			out = append(out, row)
			return nil
		})
	return out, err
}
