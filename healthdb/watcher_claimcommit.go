package healthdb

import (
	"context"
	"fmt"
)

// ClaimCommitUnknownError says that the COMMIT of a claim was sent and no
// answer came back (the connection broke): the amphorae may or may not be
// busy now. Nothing was dispatched for them. The watcher finds out which
// with TxStatus and releases them if the claim committed.
type ClaimCommitUnknownError struct {
	// TxID is the claim transaction's id (txid_current()).
	TxID       int64
	AmphoraIDs []string
	Err        error
}

func (e *ClaimCommitUnknownError) Error() string {
	return fmt.Sprintf("claim of %d amphorae: outcome of COMMIT unknown (transaction %d): %v", len(e.AmphoraIDs), e.TxID, e.Err)
}

func (e *ClaimCommitUnknownError) Unwrap() error { return e.Err }

// Transaction outcomes, as txid_status() gives them.
const (
	TxCommitted  = "committed"
	TxAborted    = "aborted"
	TxInProgress = "in progress"
	// TxUnknown: the transaction is too old for the server to remember.
	TxUnknown = ""
)

// claimCommitUnknown records a claim whose COMMIT outcome is unknown and
// tries to resolve it at once; the next cycles go on trying.
func (w *Watcher) claimCommitUnknown(ctx context.Context, e *ClaimCommitUnknownError) {
	w.m.claimCommitUnknown.Inc()
	w.log.Warn("the database connection broke during a claim's COMMIT; finding out whether it committed, to release it",
		"amphorae", len(e.AmphoraIDs), "transaction", e.TxID, "err", e.Err)
	w.mu.Lock()
	w.unresolved[e.TxID] = e.AmphoraIDs
	w.mu.Unlock()
	w.resolveClaims(ctx)
}

// resolveClaims asks the database what became of each claim whose COMMIT
// outcome is unknown. No failover was dispatched for any of them. A claim
// that committed is ours (busy rows are only ever claimed by whoever set
// busy, and released by them): it is released, for a later check to claim
// again. One that aborted left nothing behind. One still in progress is
// asked again at the next check. One the server no longer remembers is
// released too: a release at worst lets another check claim the amphora,
// and the Octavia API's test-and-set refuses a second failover of one
// load balancer.
func (w *Watcher) resolveClaims(ctx context.Context) {
	w.mu.Lock()
	pending := make(map[int64][]string, len(w.unresolved))
	for id, ids := range w.unresolved {
		pending[id] = ids
	}
	w.mu.Unlock()
	for txID, ids := range pending {
		rctx, cancel := context.WithTimeout(ctx, w.cfg.DBTimeout)
		status, err := w.cfg.Store.TxStatus(rctx, txID)
		cancel()
		if err != nil {
			w.log.Warn("could not learn whether a claim committed; asked again at the next health check",
				"transaction", txID, "amphorae", len(ids), "err", err)
			continue
		}
		switch status {
		case TxInProgress:
			continue
		case TxAborted:
			w.log.Info("the claim whose COMMIT outcome was unknown did not commit; nothing to release",
				"transaction", txID, "amphorae", len(ids))
		default:
			w.log.Warn("the claim whose COMMIT outcome was unknown committed; releasing it, no failover was requested",
				"transaction", txID, "amphorae", ids, "status", status)
			_ = w.releaseOrRetry(ctx, ids) // a failure is counted and retried every cycle
		}
		w.mu.Lock()
		delete(w.unresolved, txID)
		w.mu.Unlock()
	}
}
