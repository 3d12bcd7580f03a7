-- Our own table, not Octavia's: a version per load balancer of everything
-- the health manager's topology read depends on, so that a cached topology
-- can be checked with one index lookup per load balancer instead of being
-- read again (docs/schema.md, "Topology versions"; docs/deviations.md).
--
-- Two rows per load balancer, so that the two kinds of writers never wait
-- for each other's row:
--   writer 0: bumped by the triggers below, in the transaction of any
--             insert, update or delete of a row the topology read uses
--             (Octavia's API, its worker, its health manager, an operator,
--             this project's watcher);
--   writer 1: bumped by this project's health managers' status writes,
--             which the triggers let through (see ovh_topology_changed).
-- Every new version is a fresh value of one sequence, never an increment,
-- so that a row that somehow disappeared and came back can never repeat
-- a version a cache holds. Rows are never deleted (an absent row reads as
-- version 0). previous_version is the version a writer-1 bump replaced,
-- which tells a health manager whether anyone else wrote in between.
-- load_balancer_id '*' is the truncate epoch: TRUNCATE fires no row
-- trigger, so it bumps that row and every cache empties.

-- +goose Up
CREATE SEQUENCE ovh_lb_version_seq AS bigint;

CREATE TABLE ovh_lb_version (
    load_balancer_id varchar(36) NOT NULL,
    writer smallint NOT NULL,
    version bigint NOT NULL,
    previous_version bigint,
    CONSTRAINT ovh_lb_version_pkey PRIMARY KEY (load_balancer_id, writer),
    CONSTRAINT ovh_lb_version_writer CHECK (writer IN (0, 1))
) WITH (fillfactor = 50);

-- SECURITY DEFINER: the trigger runs in the transactions of Octavia's
-- services, whose database role may have no right to our table; it runs
-- as the role that owns the table instead, with a fixed search_path (set
-- below) so that nobody's temporary tables can stand in for ours.
--
-- A health manager of this project marks its status writes with the
-- transaction-local setting ovh_health.status_writer = 'on' and bumps
-- writer 1 itself, once per load balancer, after its updates: the trigger
-- lets such an update through without touching writer 0, but only when
-- the update changed nothing but operating_status and updated_at. Taking
-- writer 0's row lock there would order our status writes against
-- Octavia's API transactions (which take it right after locking the load
-- balancer) in a way that can deadlock; writer 1 is locked only by our
-- managers, all in one order.
-- +goose StatementBegin
CREATE FUNCTION ovh_topology_changed() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER AS $$
DECLARE
    lbs varchar[];
BEGIN
    IF TG_LEVEL = 'STATEMENT' THEN -- TRUNCATE
        INSERT INTO ovh_lb_version AS v (load_balancer_id, writer, version)
        VALUES ('*', 0, nextval('ovh_lb_version_seq'))
        ON CONFLICT (load_balancer_id, writer) DO UPDATE SET version = EXCLUDED.version;
        RETURN NULL;
    END IF;
    IF TG_OP = 'UPDATE' AND current_setting('ovh_health.status_writer', true) = 'on'
       AND to_jsonb(OLD) - '{operating_status,updated_at}'::text[]
         = to_jsonb(NEW) - '{operating_status,updated_at}'::text[] THEN
        RETURN NULL;
    END IF;
    IF TG_TABLE_NAME = 'load_balancer' THEN
        IF TG_OP <> 'INSERT' THEN lbs := lbs || OLD.id; END IF;
        IF TG_OP <> 'DELETE' THEN lbs := lbs || NEW.id; END IF;
    ELSIF TG_TABLE_NAME IN ('amphora', 'listener', 'pool') THEN
        IF TG_OP <> 'INSERT' THEN lbs := lbs || OLD.load_balancer_id; END IF;
        IF TG_OP <> 'DELETE' THEN lbs := lbs || NEW.load_balancer_id; END IF;
    ELSIF TG_TABLE_NAME = 'member' THEN
        -- A member belongs to its pool's load balancer, and it also counts
        -- for every listener whose default pool is its pool.
        SELECT array_agg(DISTINCT lb) INTO lbs FROM (
            SELECT p.load_balancer_id FROM pool p
            WHERE p.id IN (CASE WHEN TG_OP <> 'INSERT' THEN OLD.pool_id END, CASE WHEN TG_OP <> 'DELETE' THEN NEW.pool_id END)
            UNION ALL
            SELECT l.load_balancer_id FROM listener l
            WHERE l.default_pool_id IN (CASE WHEN TG_OP <> 'INSERT' THEN OLD.pool_id END, CASE WHEN TG_OP <> 'DELETE' THEN NEW.pool_id END)
        ) AS owners(lb);
    ELSE
        RAISE EXCEPTION 'ovh_topology_changed: unexpected table %', TG_TABLE_NAME;
    END IF;
    -- A row this transaction already bumped holds a version no one else
    -- has seen yet: bumping it again for every row of a bulk change would
    -- only leave dead row versions behind.
    INSERT INTO ovh_lb_version AS v (load_balancer_id, writer, version)
    SELECT lb, 0, nextval('ovh_lb_version_seq')
    FROM (SELECT DISTINCT lb FROM unnest(lbs) AS u(lb) WHERE lb IS NOT NULL) AS d
    ORDER BY lb
    ON CONFLICT (load_balancer_id, writer) DO UPDATE SET version = EXCLUDED.version
    WHERE NOT (v.xmin = pg_current_xact_id()::xid);
    RETURN NULL;
END
$$;
-- +goose StatementEnd

-- +goose StatementBegin
DO $$
BEGIN
    EXECUTE format('ALTER FUNCTION ovh_topology_changed() SET search_path = %I, pg_temp', current_schema());
END
$$;
-- +goose StatementEnd

CREATE TRIGGER ovh_topology_version AFTER INSERT OR UPDATE OR DELETE ON amphora
    FOR EACH ROW EXECUTE FUNCTION ovh_topology_changed();
CREATE TRIGGER ovh_topology_version AFTER INSERT OR UPDATE OR DELETE ON load_balancer
    FOR EACH ROW EXECUTE FUNCTION ovh_topology_changed();
CREATE TRIGGER ovh_topology_version AFTER INSERT OR UPDATE OR DELETE ON listener
    FOR EACH ROW EXECUTE FUNCTION ovh_topology_changed();
CREATE TRIGGER ovh_topology_version AFTER INSERT OR UPDATE OR DELETE ON pool
    FOR EACH ROW EXECUTE FUNCTION ovh_topology_changed();
CREATE TRIGGER ovh_topology_version AFTER INSERT OR UPDATE OR DELETE ON member
    FOR EACH ROW EXECUTE FUNCTION ovh_topology_changed();
CREATE TRIGGER ovh_topology_truncate AFTER TRUNCATE ON amphora
    FOR EACH STATEMENT EXECUTE FUNCTION ovh_topology_changed();
CREATE TRIGGER ovh_topology_truncate AFTER TRUNCATE ON load_balancer
    FOR EACH STATEMENT EXECUTE FUNCTION ovh_topology_changed();
CREATE TRIGGER ovh_topology_truncate AFTER TRUNCATE ON listener
    FOR EACH STATEMENT EXECUTE FUNCTION ovh_topology_changed();
CREATE TRIGGER ovh_topology_truncate AFTER TRUNCATE ON pool
    FOR EACH STATEMENT EXECUTE FUNCTION ovh_topology_changed();
CREATE TRIGGER ovh_topology_truncate AFTER TRUNCATE ON member
    FOR EACH STATEMENT EXECUTE FUNCTION ovh_topology_changed();

-- +goose Down
DROP TRIGGER ovh_topology_truncate ON member;
DROP TRIGGER ovh_topology_truncate ON pool;
DROP TRIGGER ovh_topology_truncate ON listener;
DROP TRIGGER ovh_topology_truncate ON load_balancer;
DROP TRIGGER ovh_topology_truncate ON amphora;
DROP TRIGGER ovh_topology_version ON member;
DROP TRIGGER ovh_topology_version ON pool;
DROP TRIGGER ovh_topology_version ON listener;
DROP TRIGGER ovh_topology_version ON load_balancer;
DROP TRIGGER ovh_topology_version ON amphora;
DROP FUNCTION ovh_topology_changed();
DROP TABLE ovh_lb_version;
DROP SEQUENCE ovh_lb_version_seq;
