// Package statuspage is the health manager's web status page, served on
// [health_manager] metrics_bind at "/": a fleet summary, the load balancers
// with their listener, pool and member status tree, a histogram of
// heartbeat age, and the recent status transitions and failovers.
//
// The page must stay cheap however large the fleet and however many
// browsers watch it:
//
//   - Every request is answered from one shared snapshot. A snapshot is
//     reused for at least CacheFor (1 s) and at least 50 times as long as
//     its database reads took, so the page never keeps the database busy
//     more than 2% of the time; requests that arrive while a snapshot is
//     being built wait for that one build instead of starting their own.
//   - A snapshot is two round trips of short queries: aggregates over
//     amphora_health, amphora and load_balancer (one pass each), then the
//     children of at most MaxLoadBalancers load balancers through the
//     load_balancer_id and pool_id indexes, with at most MaxMembers
//     members in all.
//   - The counters come from the few metrics registered through Watch,
//     not from gathering the daemon's whole registry.
//   - Transitions and failovers are not read from the database: the
//     process records the ones it made in small in-memory rings
//     (RecordBatch, WrapDriver).
//
// The page is server-rendered HTML with its CSS and JavaScript embedded; it
// loads nothing from anywhere else. The script refreshes the content every
// few seconds and filters the load balancer list in the browser.
package statuspage
