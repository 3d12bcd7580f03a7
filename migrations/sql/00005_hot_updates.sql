-- Room on every page for the next version of its rows, so that the
-- updates made on every heartbeat (amphora_health.last_update) and on
-- every statistics flush (listener_statistics' counters) stay HOT: the new
-- version goes on the same page and no index entry is written (none of
-- the columns they change is indexed). Without it the pages fill, each
-- update moves its row to another page and inserts into the primary key
-- index, and the index then needs bottom-up deletion (docs/performance.md).
--
-- The status tables are left alone: operating_status is indexed
-- (Octavia's fk_*_operating_status_name), so their updates can never be
-- HOT, and they change only when a status does.
--
-- Only pages written from now on get the room: on a database already
-- full of rows, VACUUM FULL (or pg_repack) of the two tables applies it.

-- +goose Up
ALTER TABLE amphora_health SET (fillfactor = 50);
ALTER TABLE listener_statistics SET (fillfactor = 50);

-- +goose Down
ALTER TABLE amphora_health RESET (fillfactor);
ALTER TABLE listener_statistics RESET (fillfactor);
