-- Our own table, not Octavia's: the idempotency key of listener-statistics
-- flushes (docs/stats.md, "Exactly once"). One row per health-manager
-- process; seq is the last flush it committed, written in the same
-- transaction as the flush's listener_statistics rows, so a flush retried
-- after an ambiguous COMMIT is recognised. Rows of processes gone for a
-- week are pruned by the managers.
--
-- The name carries the ovh_ prefix so that it cannot collide with a table
-- of Octavia's; on a database whose Octavia schema someone else made,
-- migrate creates this table and nothing else. Types are kept to ones
-- MySQL shares.

-- +goose Up
CREATE TABLE IF NOT EXISTS ovh_stats_flush (
    manager_id varchar(64) NOT NULL,
    seq bigint NOT NULL,
    created_at timestamp without time zone NOT NULL,
    updated_at timestamp without time zone NOT NULL,
    CONSTRAINT ovh_stats_flush_pkey PRIMARY KEY (manager_id)
);

-- +goose Down
DROP TABLE ovh_stats_flush;
