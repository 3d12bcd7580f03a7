-- Our own table on MySQL/MariaDB, where Octavia's alembic owns every other
-- table: the idempotency key of listener-statistics flushes (docs/stats.md,
-- "Exactly once"); the same design as ../00002_ovh_stats_flush.sql for
-- PostgreSQL. migrate creates it and nothing else there. DATETIME(6) is
-- UTC, written from UTC_TIMESTAMP(6), like Octavia's own DATETIME columns.
CREATE TABLE IF NOT EXISTS ovh_stats_flush (
    manager_id varchar(64) NOT NULL,
    seq bigint NOT NULL,
    created_at datetime(6) NOT NULL,
    updated_at datetime(6) NOT NULL,
    PRIMARY KEY (manager_id)
) ENGINE=InnoDB;
