package pgstore

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/octavia-vpp/health/healthdb"
)

// The reads of shadow mode (healthdb/shadow): plain SELECTs, which a
// read-only session and a role granted SELECT alone may run.

const selectAmphoraHealth = `
SELECT h.amphora_id, COALESCE(a.status, ''), h.last_update, h.busy, COALESCE(lb.provisioning_status, '')
FROM amphora_health h LEFT JOIN amphora a ON a.id = h.amphora_id LEFT JOIN load_balancer lb ON lb.id = a.load_balancer_id`

// ReadAmphoraHealth returns the amphora_health rows of the given amphorae
// (all rows when ids is nil) and the database's time (naive UTC, as
// last_update is written).
func (s *Store) ReadAmphoraHealth(ctx context.Context, amphoraIDs []string) ([]healthdb.AmphoraHealthRow, time.Time, error) {
	q, args := selectAmphoraHealth+` ORDER BY h.amphora_id`, []any{}
	if amphoraIDs != nil {
		q, args = selectAmphoraHealth+` WHERE h.amphora_id = ANY($1::varchar[]) ORDER BY h.amphora_id`, []any{storableIDs(amphoraIDs)}
	}
	var out []healthdb.AmphoraHealthRow
	var now time.Time
	err := pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, `SELECT (now() AT TIME ZONE 'UTC')::timestamp`).Scan(&now); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, q, args...)
		if err != nil {
			return err
		}
		return scanRows(rows, func(r pgx.Rows) error {
			var row healthdb.AmphoraHealthRow
			if err := r.Scan(&row.AmphoraID, &row.Status, &row.LastUpdate, &row.Busy, &row.LBProvisioningStatus); err != nil {
				return err
			}
			out = append(out, row)
			return nil
		})
	})
	return out, now, err
}

// ReadListenerStatistics returns the listener_statistics rows of the given
// amphorae.
func (s *Store) ReadListenerStatistics(ctx context.Context, amphoraIDs []string) ([]healthdb.ListenerStatsRow, error) {
	rows, err := s.pool.Query(ctx, `
SELECT listener_id, amphora_id, bytes_in, bytes_out, active_connections, total_connections, request_errors
FROM listener_statistics WHERE amphora_id = ANY($1::varchar[]) ORDER BY listener_id`, storableIDs(amphoraIDs))
	if err != nil {
		return nil, err
	}
	var out []healthdb.ListenerStatsRow
	err = scanRows(rows, func(r pgx.Rows) error {
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
