-- The rest of Octavia 11.0.0's schema: the tables the health manager does
-- not touch, so that a database built by these migrations is the one
-- Octavia's alembic head (0995c26fc506, recorded by 00004) describes.
-- The reference is SHOW CREATE TABLE on a MariaDB database migrated by
-- Debian's `octavia-db-manage upgrade head` (python3-octavia 11.0.0),
-- with the type mapping and naming rules of 00001 (docs/schema.md).
--
-- It also brings four columns of 00001 to the sizes Octavia's migrations
-- really create, which the same comparison showed 00001 had wrong: the
-- three lookup names and health_monitor.url_path (2048 in the ORM model). Octavia's migration 13500e2e978d
-- names varchar(255) only as the existing type, which alters nothing.

-- +goose Up
ALTER TABLE algorithm     ALTER COLUMN name TYPE varchar(255);
ALTER TABLE amphora_roles ALTER COLUMN name TYPE varchar(36);
ALTER TABLE lb_topology   ALTER COLUMN name TYPE varchar(36);
-- Fails, changing nothing, if a longer path was stored: MySQL would have
-- refused it, and truncating a path silently would change a monitor.
ALTER TABLE health_monitor ALTER COLUMN url_path TYPE varchar(255);

-- Lookup tables, with Octavia 11's rows; description is NULL everywhere.
CREATE TABLE l7policy_action (
    name        varchar(36)  NOT NULL,
    description varchar(255),
    CONSTRAINT l7policy_action_pkey PRIMARY KEY (name)
);
INSERT INTO l7policy_action (name) VALUES
    ('REDIRECT_PREFIX'), ('REDIRECT_TO_POOL'), ('REDIRECT_TO_URL'), ('REJECT');

CREATE TABLE l7rule_compare_type (
    name        varchar(36)  NOT NULL,
    description varchar(255),
    CONSTRAINT l7rule_compare_type_pkey PRIMARY KEY (name)
);
INSERT INTO l7rule_compare_type (name) VALUES
    ('CONTAINS'), ('ENDS_WITH'), ('EQUAL_TO'), ('REGEX'), ('STARTS_WITH');

CREATE TABLE l7rule_type (
    name        varchar(36)  NOT NULL,
    description varchar(255),
    CONSTRAINT l7rule_type_pkey PRIMARY KEY (name)
);
INSERT INTO l7rule_type (name) VALUES
    ('COOKIE'), ('FILE_TYPE'), ('HEADER'), ('HOST_NAME'), ('PATH'),
    ('SSL_CONN_HAS_CERT'), ('SSL_DN_FIELD'), ('SSL_VERIFY_RESULT');

CREATE TABLE vrrp_auth_method (
    name        varchar(36)  NOT NULL,
    description varchar(255),
    CONSTRAINT vrrp_auth_method_pkey PRIMARY KEY (name)
);
INSERT INTO vrrp_auth_method (name) VALUES ('AH'), ('PASS');

-- A load balancer's graph.
CREATE TABLE additional_vip (
    load_balancer_id varchar(36) NOT NULL,
    ip_address       varchar(64),
    port_id          varchar(36),
    subnet_id        varchar(36) NOT NULL,
    network_id       varchar(36),
    CONSTRAINT additional_vip_pkey PRIMARY KEY (load_balancer_id, subnet_id),
    CONSTRAINT fk_add_vip_load_balancer_id FOREIGN KEY (load_balancer_id)
        REFERENCES load_balancer (id)
);
CREATE INDEX ix_additional_vip_load_balancer_id ON additional_vip (load_balancer_id);

CREATE TABLE vrrp_group (
    load_balancer_id varchar(36) NOT NULL,
    vrrp_group_name  varchar(36),
    vrrp_auth_type   varchar(16),
    vrrp_auth_pass   varchar(36),
    advert_int       integer,
    CONSTRAINT vrrp_group_pkey PRIMARY KEY (load_balancer_id),
    CONSTRAINT fk_load_balancer_vrrp_auth_method_name FOREIGN KEY (vrrp_auth_type)
        REFERENCES vrrp_auth_method (name),
    CONSTRAINT fk_vrrp_group_load_balancer_id FOREIGN KEY (load_balancer_id)
        REFERENCES load_balancer (id)
);
CREATE INDEX fk_load_balancer_vrrp_auth_method_name ON vrrp_group (vrrp_auth_type);

CREATE TABLE listener_cidr (
    listener_id varchar(36) NOT NULL,
    cidr        varchar(64) NOT NULL,
    CONSTRAINT listener_cidr_pkey PRIMARY KEY (listener_id, cidr),
    CONSTRAINT fk_listener_cidr_listener_id FOREIGN KEY (listener_id)
        REFERENCES listener (id)
);

CREATE TABLE sni (
    listener_id      varchar(36)  NOT NULL,
    tls_container_id varchar(128) NOT NULL,
    position         integer,
    CONSTRAINT sni_pkey PRIMARY KEY (listener_id, tls_container_id),
    CONSTRAINT fk_sni_listener_id FOREIGN KEY (listener_id)
        REFERENCES listener (id)
);

CREATE TABLE session_persistence (
    pool_id                 varchar(36)  NOT NULL,
    type                    varchar(16)  NOT NULL,
    cookie_name             varchar(255),
    persistence_timeout     integer,
    persistence_granularity varchar(64),
    CONSTRAINT session_persistence_pkey PRIMARY KEY (pool_id),
    CONSTRAINT fk_session_persistence_pool_id FOREIGN KEY (pool_id)
        REFERENCES pool (id),
    CONSTRAINT fk_session_persistence_session_persistence_type_name FOREIGN KEY (type)
        REFERENCES session_persistence_type (name)
);
CREATE INDEX fk_session_persistence_session_persistence_type_name ON session_persistence (type);

CREATE TABLE l7policy (
    id                  varchar(36)  NOT NULL,
    name                varchar(255),
    description         varchar(255),
    listener_id         varchar(36)  NOT NULL,
    action              varchar(36)  NOT NULL,
    redirect_pool_id    varchar(36),
    redirect_url        varchar(255),
    position            integer      NOT NULL,
    enabled             boolean      NOT NULL,
    provisioning_status varchar(16)  NOT NULL,
    created_at          timestamp without time zone,
    updated_at          timestamp without time zone,
    project_id          varchar(36),
    operating_status    varchar(16)  NOT NULL,
    redirect_prefix     varchar(255),
    redirect_http_code  integer,
    CONSTRAINT l7policy_pkey PRIMARY KEY (id),
    CONSTRAINT fk_l7policy_l7policy_action_name FOREIGN KEY (action)
        REFERENCES l7policy_action (name),
    CONSTRAINT fk_l7policy_listener_id FOREIGN KEY (listener_id)
        REFERENCES listener (id),
    CONSTRAINT fk_l7policy_operating_status_name FOREIGN KEY (operating_status)
        REFERENCES operating_status (name),
    CONSTRAINT fk_l7policy_pool_id FOREIGN KEY (redirect_pool_id)
        REFERENCES pool (id),
    CONSTRAINT fk_l7policy_provisioning_status_name FOREIGN KEY (provisioning_status)
        REFERENCES provisioning_status (name)
);
CREATE INDEX fk_l7policy_listener_id ON l7policy (listener_id);
CREATE INDEX fk_l7policy_pool_id ON l7policy (redirect_pool_id);
CREATE INDEX fk_l7policy_l7policy_action_name ON l7policy (action);
CREATE INDEX fk_l7policy_operating_status_name ON l7policy (operating_status);
CREATE INDEX fk_l7policy_provisioning_status_name ON l7policy (provisioning_status);

CREATE TABLE l7rule (
    id                  varchar(36)  NOT NULL,
    l7policy_id         varchar(36)  NOT NULL,
    type                varchar(36)  NOT NULL,
    compare_type        varchar(36)  NOT NULL,
    key                 varchar(255),
    value               varchar(255) NOT NULL,
    invert              boolean      NOT NULL,
    provisioning_status varchar(16)  NOT NULL,
    created_at          timestamp without time zone,
    updated_at          timestamp without time zone,
    project_id          varchar(36),
    enabled             boolean      NOT NULL DEFAULT true,
    operating_status    varchar(16)  NOT NULL,
    CONSTRAINT l7rule_pkey PRIMARY KEY (id),
    CONSTRAINT fk_l7rule_l7policy_id FOREIGN KEY (l7policy_id)
        REFERENCES l7policy (id),
    CONSTRAINT fk_l7rule_l7rule_compare_type_name FOREIGN KEY (compare_type)
        REFERENCES l7rule_compare_type (name),
    CONSTRAINT fk_l7rule_l7rule_type_name FOREIGN KEY (type)
        REFERENCES l7rule_type (name),
    CONSTRAINT fk_l7rule_operating_status_name FOREIGN KEY (operating_status)
        REFERENCES operating_status (name),
    CONSTRAINT fk_l7rule_provisioning_status_name FOREIGN KEY (provisioning_status)
        REFERENCES provisioning_status (name)
);
CREATE INDEX fk_l7rule_l7policy_id ON l7rule (l7policy_id);
CREATE INDEX fk_l7rule_l7rule_type_name ON l7rule (type);
CREATE INDEX fk_l7rule_l7rule_compare_type_name ON l7rule (compare_type);
CREATE INDEX fk_l7rule_provisioning_status_name ON l7rule (provisioning_status);
CREATE INDEX fk_l7rule_operating_status_name ON l7rule (operating_status);

-- Tags of any resource, quotas, and the controller's bookkeeping.
CREATE TABLE tags (
    resource_id varchar(36)  NOT NULL,
    tag         varchar(255) NOT NULL,
    CONSTRAINT tags_pkey PRIMARY KEY (resource_id, tag)
);
CREATE INDEX ix_tags_tag ON tags (tag);

CREATE TABLE quotas (
    project_id            varchar(36) NOT NULL,
    health_monitor        integer,
    load_balancer         integer,
    listener              integer,
    member                integer,
    pool                  integer,
    in_use_health_monitor integer,
    in_use_load_balancer  integer,
    in_use_listener       integer,
    in_use_member         integer,
    in_use_pool           integer,
    l7policy              integer,
    l7rule                integer,
    in_use_l7policy       integer,
    in_use_l7rule         integer,
    CONSTRAINT quotas_pkey PRIMARY KEY (project_id)
);

CREATE TABLE amphora_build_request (
    amphora_id   varchar(36) NOT NULL,
    priority     integer,
    created_time timestamp without time zone NOT NULL,
    status       varchar(16) NOT NULL,
    CONSTRAINT amphora_build_request_pkey PRIMARY KEY (amphora_id)
);

-- AUTO_INCREMENT in MySQL; Octavia's migration seeds one row.
CREATE TABLE amphora_build_slots (
    id         integer GENERATED BY DEFAULT AS IDENTITY,
    slots_used integer,
    CONSTRAINT amphora_build_slots_pkey PRIMARY KEY (id)
);
INSERT INTO amphora_build_slots (slots_used) VALUES (0);

-- Left over from the removed spares pool; Octavia's migrations still
-- create it with one row.
CREATE TABLE spares_pool (
    updated_at timestamp without time zone NOT NULL DEFAULT (now() AT TIME ZONE 'UTC'),
    CONSTRAINT spares_pool_pkey PRIMARY KEY (updated_at)
);
INSERT INTO spares_pool DEFAULT VALUES;

-- +goose Down
DROP TABLE spares_pool, amphora_build_slots, amphora_build_request, quotas,
    tags, l7rule, l7policy, session_persistence, sni, listener_cidr,
    vrrp_group, additional_vip, vrrp_auth_method, l7rule_type,
    l7rule_compare_type, l7policy_action;
ALTER TABLE health_monitor ALTER COLUMN url_path TYPE varchar(2048);
ALTER TABLE lb_topology   ALTER COLUMN name TYPE varchar(30);
ALTER TABLE amphora_roles ALTER COLUMN name TYPE varchar(30);
ALTER TABLE algorithm     ALTER COLUMN name TYPE varchar(30);
