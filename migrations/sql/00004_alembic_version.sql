-- Octavia's own database tool (octavia-db-manage) keeps its revision in
-- alembic_version. A database these migrations built holds what Octavia
-- 11.0.0's alembic head would have built for the tables they create, so
-- it is recorded at that head, 0995c26fc506: `octavia-db-manage current`
-- then reports it, and `octavia-db-manage upgrade head` has nothing to
-- do instead of failing on tables that already exist. Later Octavia
-- releases upgrade from there with their own migrations.
--
-- The table is alembic's, as alembic creates it. A revision already
-- recorded (Octavia's tool ran first) is left alone.

-- +goose Up
CREATE TABLE IF NOT EXISTS alembic_version (
    version_num varchar(32) NOT NULL,
    CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num)
);
INSERT INTO alembic_version (version_num)
    SELECT '0995c26fc506' WHERE NOT EXISTS (SELECT 1 FROM alembic_version);

-- +goose Down
DROP TABLE IF EXISTS alembic_version;
