-- Our own table on MySQL/MariaDB: one row per claim transaction of the
-- stale-amphora watcher, written in that transaction, so that a claim
-- whose COMMIT got no answer can be told committed or not
-- (PostgreSQL answers that with txid_status(); MySQL has no such thing).
-- A manager keeps its last 1000 rows; rows older than a week are pruned.
CREATE TABLE IF NOT EXISTS ovh_claim_key (
    manager_id varchar(64) NOT NULL,
    seq bigint NOT NULL,
    created_at datetime(6) NOT NULL,
    PRIMARY KEY (manager_id, seq)
) ENGINE=InnoDB;
