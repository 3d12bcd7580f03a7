-- The subset of Octavia 11.0.0's schema that the health manager touches,
-- reproduced for PostgreSQL (contract: octavia-health-manager.md §7.1 and
-- §7.5). Octavia's own alembic migrations stop at 9bf4d21caaea on
-- PostgreSQL, so this file stands in for them.
--
-- Rules followed throughout:
--   * names of tables, columns and constraints are Octavia's;
--   * MySQL types are mapped as in §7.5: varchar(n) stays varchar(n),
--     tinyint(1) becomes boolean, datetime becomes timestamp without time
--     zone holding UTC, int(11) integer, bigint(20) bigint, blob bytea;
--   * every KEY that InnoDB created for a foreign key is created here
--     explicitly under InnoDB's name, because PostgreSQL does not index the
--     referencing side of a foreign key by itself;
--   * amphora_health and listener_statistics deliberately have no foreign
--     keys (§7.1, §7.2): heartbeats name ids that need not exist.
-- Anything beyond Octavia's schema is listed in docs/schema.md.

-- +goose Up

-- Lookup tables. Octavia 11 fills them with the rows below; description is
-- NULL everywhere.
CREATE TABLE operating_status (
    name        varchar(30)  NOT NULL,
    description varchar(255),
    CONSTRAINT operating_status_pkey PRIMARY KEY (name)
);
INSERT INTO operating_status (name) VALUES
    ('DEGRADED'), ('DRAINING'), ('ERROR'), ('NO_MONITOR'), ('OFFLINE'), ('ONLINE');

CREATE TABLE provisioning_status (
    name        varchar(30)  NOT NULL,
    description varchar(255),
    CONSTRAINT provisioning_status_pkey PRIMARY KEY (name)
);
INSERT INTO provisioning_status (name) VALUES
    ('ACTIVE'), ('ALLOCATED'), ('BOOTING'), ('DELETED'), ('ERROR'),
    ('FAILOVER_STOPPED'), ('PENDING_CREATE'), ('PENDING_DELETE'),
    ('PENDING_UPDATE'), ('READY');

CREATE TABLE protocol (
    name        varchar(30)  NOT NULL,
    description varchar(255),
    CONSTRAINT protocol_pkey PRIMARY KEY (name)
);
INSERT INTO protocol (name) VALUES
    ('HTTP'), ('HTTPS'), ('PROMETHEUS'), ('PROXY'), ('PROXYV2'), ('SCTP'),
    ('TCP'), ('TERMINATED_HTTPS'), ('UDP');

CREATE TABLE lb_topology (
    name        varchar(30)  NOT NULL,
    description varchar(255),
    CONSTRAINT lb_topology_pkey PRIMARY KEY (name)
);
INSERT INTO lb_topology (name) VALUES ('ACTIVE_STANDBY'), ('SINGLE');

CREATE TABLE amphora_roles (
    name        varchar(30)  NOT NULL,
    description varchar(255),
    CONSTRAINT amphora_roles_pkey PRIMARY KEY (name)
);
INSERT INTO amphora_roles (name) VALUES ('BACKUP'), ('MASTER'), ('STANDALONE');

CREATE TABLE algorithm (
    name        varchar(30)  NOT NULL,
    description varchar(255),
    CONSTRAINT algorithm_pkey PRIMARY KEY (name)
);
INSERT INTO algorithm (name) VALUES
    ('LEAST_CONNECTIONS'), ('ROUND_ROBIN'), ('SOURCE_IP'), ('SOURCE_IP_PORT');

CREATE TABLE health_monitor_type (
    name        varchar(30)  NOT NULL,
    description varchar(255),
    CONSTRAINT health_monitor_type_pkey PRIMARY KEY (name)
);
INSERT INTO health_monitor_type (name) VALUES
    ('HTTP'), ('HTTPS'), ('PING'), ('SCTP'), ('TCP'), ('TLS-HELLO'), ('UDP-CONNECT');

CREATE TABLE session_persistence_type (
    name        varchar(30)  NOT NULL,
    description varchar(255),
    CONSTRAINT session_persistence_type_pkey PRIMARY KEY (name)
);
INSERT INTO session_persistence_type (name) VALUES
    ('APP_COOKIE'), ('HTTP_COOKIE'), ('SOURCE_IP');

-- Target of listener.client_authentication; Octavia gives it only a name.
CREATE TABLE client_authentication_mode (
    name varchar(10) NOT NULL,
    CONSTRAINT client_authentication_mode_pkey PRIMARY KEY (name)
);
INSERT INTO client_authentication_mode (name) VALUES
    ('MANDATORY'), ('NONE'), ('OPTIONAL');

-- Targets of load_balancer.flavor_id and load_balancer.availability_zone,
-- with the profiles they reference in turn. The health manager never reads
-- them; they exist so that the load_balancer foreign keys are Octavia's.
-- Octavia 11 also seeds a placeholder row in each (nil UUID / DELETED) that
-- its API points deleted load balancers at; it is reproduced here.
CREATE TABLE flavor_profile (
    id            varchar(36)   NOT NULL,
    name          varchar(255)  NOT NULL,
    provider_name varchar(255)  NOT NULL,
    flavor_data   varchar(4096) NOT NULL,
    CONSTRAINT flavor_profile_pkey PRIMARY KEY (id)
);
INSERT INTO flavor_profile (id, name, provider_name, flavor_data) VALUES
    ('00000000-0000-0000-0000-000000000000', 'DELETED-PLACEHOLDER', 'DELETED', '{}');

CREATE TABLE flavor (
    id                varchar(36)  NOT NULL,
    name              varchar(255) NOT NULL,
    description       varchar(255),
    enabled           boolean      NOT NULL,
    flavor_profile_id varchar(36)  NOT NULL,
    CONSTRAINT flavor_pkey PRIMARY KEY (id),
    CONSTRAINT uq_flavor_name UNIQUE (name),
    CONSTRAINT fk_flavor_flavor_profile_id FOREIGN KEY (flavor_profile_id)
        REFERENCES flavor_profile (id)
);
CREATE INDEX fk_flavor_flavor_profile_id ON flavor (flavor_profile_id);
INSERT INTO flavor (id, name, description, enabled, flavor_profile_id) VALUES
    ('00000000-0000-0000-0000-000000000000', 'DELETED-PLACEHOLDER',
     'Placeholder for DELETED LBs with DELETED flavors', false,
     '00000000-0000-0000-0000-000000000000');

CREATE TABLE availability_zone_profile (
    id                     varchar(36)   NOT NULL,
    name                   varchar(255)  NOT NULL,
    provider_name          varchar(255)  NOT NULL,
    availability_zone_data varchar(4096) NOT NULL,
    CONSTRAINT availability_zone_profile_pkey PRIMARY KEY (id)
);
INSERT INTO availability_zone_profile (id, name, provider_name, availability_zone_data) VALUES
    ('00000000-0000-0000-0000-000000000000', 'DELETED-PLACEHOLDER', 'DELETED', '{}');

CREATE TABLE availability_zone (
    name                         varchar(255) NOT NULL,
    description                  varchar(255),
    enabled                      boolean      NOT NULL,
    availability_zone_profile_id varchar(36)  NOT NULL,
    CONSTRAINT availability_zone_pkey PRIMARY KEY (name),
    CONSTRAINT fk_az_az_profile_id FOREIGN KEY (availability_zone_profile_id)
        REFERENCES availability_zone_profile (id)
);
CREATE INDEX fk_az_az_profile_id ON availability_zone (availability_zone_profile_id);
INSERT INTO availability_zone (name, description, enabled, availability_zone_profile_id) VALUES
    ('00000000-0000-0000-0000-000000000000',
     'Placeholder for DELETED LBs with DELETED availability zones', false,
     '00000000-0000-0000-0000-000000000000');

CREATE TABLE load_balancer (
    project_id          varchar(36),
    id                  varchar(36)  NOT NULL,
    name                varchar(255),
    description         varchar(255),
    provisioning_status varchar(16)  NOT NULL,
    operating_status    varchar(16)  NOT NULL,
    enabled             boolean      NOT NULL,
    topology            varchar(36),
    server_group_id     varchar(36),
    created_at          timestamp without time zone,
    updated_at          timestamp without time zone,
    provider            varchar(64),
    flavor_id           varchar(36),
    availability_zone   varchar(255),
    CONSTRAINT load_balancer_pkey PRIMARY KEY (id),
    CONSTRAINT fk_lb_topology_name FOREIGN KEY (topology)
        REFERENCES lb_topology (name),
    CONSTRAINT fk_load_balancer_availability_zone_name FOREIGN KEY (availability_zone)
        REFERENCES availability_zone (name),
    CONSTRAINT fk_load_balancer_operating_status_name FOREIGN KEY (operating_status)
        REFERENCES operating_status (name),
    CONSTRAINT fk_load_balancer_provisioning_status_name FOREIGN KEY (provisioning_status)
        REFERENCES provisioning_status (name),
    CONSTRAINT fk_loadbalancer_flavor_id FOREIGN KEY (flavor_id)
        REFERENCES flavor (id)
);
CREATE INDEX fk_load_balancer_provisioning_status_name ON load_balancer (provisioning_status);
CREATE INDEX fk_load_balancer_operating_status_name ON load_balancer (operating_status);
CREATE INDEX fk_lb_topology_name ON load_balancer (topology);
CREATE INDEX fk_loadbalancer_flavor_id ON load_balancer (flavor_id);
CREATE INDEX fk_load_balancer_availability_zone_name ON load_balancer (availability_zone);

-- One VIP per load balancer, keyed by it.
CREATE TABLE vip (
    load_balancer_id varchar(36) NOT NULL,
    ip_address       varchar(64),
    port_id          varchar(36),
    subnet_id        varchar(36),
    network_id       varchar(36),
    qos_policy_id    varchar(36),
    octavia_owned    boolean,
    CONSTRAINT vip_pkey PRIMARY KEY (load_balancer_id),
    CONSTRAINT fk_vip_load_balancer_id FOREIGN KEY (load_balancer_id)
        REFERENCES load_balancer (id)
);

CREATE TABLE amphora (
    id               varchar(36)  NOT NULL,
    compute_id       varchar(36),
    status           varchar(36)  NOT NULL,
    load_balancer_id varchar(36),
    lb_network_ip    varchar(64),
    vrrp_ip          varchar(64),
    ha_ip            varchar(64),
    vrrp_port_id     varchar(36),
    ha_port_id       varchar(36),
    role             varchar(36),
    cert_expiration  timestamp without time zone,
    cert_busy        boolean      NOT NULL,
    vrrp_interface   varchar(16),
    vrrp_id          integer,
    vrrp_priority    integer,
    cached_zone      varchar(255),
    created_at       timestamp without time zone,
    updated_at       timestamp without time zone,
    image_id         varchar(36),
    compute_flavor   varchar(255),
    CONSTRAINT amphora_pkey PRIMARY KEY (id),
    CONSTRAINT fk_amphora_load_balancer_id FOREIGN KEY (load_balancer_id)
        REFERENCES load_balancer (id),
    CONSTRAINT fk_amphora_provisioning_status_name FOREIGN KEY (status)
        REFERENCES provisioning_status (name),
    CONSTRAINT fk_amphora_roles_name FOREIGN KEY (role)
        REFERENCES amphora_roles (name)
);
-- The health-update query joins amphora to load_balancer on this column.
CREATE INDEX fk_amphora_load_balancer_id ON amphora (load_balancer_id);
CREATE INDEX fk_amphora_provisioning_status_name ON amphora (status);
CREATE INDEX fk_amphora_roles_name ON amphora (role);

-- No foreign key to amphora and no server default for busy (§7.1, §7.3):
-- inserts must supply busy = false.
CREATE TABLE amphora_health (
    amphora_id  varchar(36) NOT NULL,
    last_update timestamp without time zone NOT NULL,
    busy        boolean     NOT NULL,
    CONSTRAINT amphora_health_pkey PRIMARY KEY (amphora_id)
);

CREATE TABLE pool (
    project_id            varchar(36),
    id                    varchar(36)   NOT NULL,
    name                  varchar(255),
    description           varchar(255),
    protocol              varchar(16)   NOT NULL,
    lb_algorithm          varchar(255)  NOT NULL,
    operating_status      varchar(16)   NOT NULL,
    enabled               boolean       NOT NULL,
    load_balancer_id      varchar(36),
    created_at            timestamp without time zone,
    updated_at            timestamp without time zone,
    provisioning_status   varchar(16)   NOT NULL,
    tls_certificate_id    varchar(255),
    ca_tls_certificate_id varchar(255),
    crl_container_id      varchar(255),
    tls_enabled           boolean       NOT NULL DEFAULT false,
    tls_ciphers           varchar(2048),
    tls_versions          varchar(512),
    alpn_protocols        varchar(512),
    CONSTRAINT pool_pkey PRIMARY KEY (id),
    CONSTRAINT fk_pool_algorithm_name FOREIGN KEY (lb_algorithm)
        REFERENCES algorithm (name),
    CONSTRAINT fk_pool_operating_status_name FOREIGN KEY (operating_status)
        REFERENCES operating_status (name),
    CONSTRAINT fk_pool_protocol_name FOREIGN KEY (protocol)
        REFERENCES protocol (name),
    CONSTRAINT fk_pool_provisioning_status_name FOREIGN KEY (provisioning_status)
        REFERENCES provisioning_status (name),
    CONSTRAINT pool_ibfk_1 FOREIGN KEY (load_balancer_id)
        REFERENCES load_balancer (id)
);
CREATE INDEX fk_pool_protocol_name ON pool (protocol);
CREATE INDEX fk_pool_operating_status_name ON pool (operating_status);
CREATE INDEX fk_pool_algorithm_name ON pool (lb_algorithm);
-- InnoDB's name for this one is plain "load_balancer_id"; PostgreSQL index
-- names share one namespace per schema, so it gets a table prefix here.
CREATE INDEX pool_load_balancer_id ON pool (load_balancer_id);
CREATE INDEX fk_pool_provisioning_status_name ON pool (provisioning_status);

CREATE TABLE listener (
    project_id                   varchar(36),
    id                           varchar(36)   NOT NULL,
    name                         varchar(255),
    description                  varchar(255),
    protocol                     varchar(16)   NOT NULL,
    protocol_port                integer       NOT NULL,
    connection_limit             integer,
    load_balancer_id             varchar(36),
    tls_certificate_id           varchar(255),
    default_pool_id              varchar(36),
    provisioning_status          varchar(16)   NOT NULL,
    operating_status             varchar(16)   NOT NULL,
    enabled                      boolean       NOT NULL,
    peer_port                    integer,
    insert_headers               bytea,
    created_at                   timestamp without time zone,
    updated_at                   timestamp without time zone,
    timeout_client_data          integer,
    timeout_member_connect       integer,
    timeout_member_data          integer,
    timeout_tcp_inspect          integer,
    client_ca_tls_certificate_id varchar(255),
    client_authentication        varchar(10)   NOT NULL DEFAULT 'NONE',
    client_crl_container_id      varchar(255),
    tls_ciphers                  varchar(2048),
    tls_versions                 varchar(512),
    alpn_protocols               varchar(512),
    CONSTRAINT listener_pkey PRIMARY KEY (id),
    CONSTRAINT uq_listener_load_balancer_id_protocol_port
        UNIQUE (load_balancer_id, protocol, protocol_port),
    CONSTRAINT fk_listener_load_balancer_id FOREIGN KEY (load_balancer_id)
        REFERENCES load_balancer (id),
    CONSTRAINT fk_listener_operating_status_name FOREIGN KEY (operating_status)
        REFERENCES operating_status (name),
    CONSTRAINT fk_listener_pool_id FOREIGN KEY (default_pool_id)
        REFERENCES pool (id),
    CONSTRAINT fk_listener_protocol_name FOREIGN KEY (protocol)
        REFERENCES protocol (name),
    CONSTRAINT fk_listener_provisioning_status_name FOREIGN KEY (provisioning_status)
        REFERENCES provisioning_status (name),
    CONSTRAINT listener_ibfk_1 FOREIGN KEY (client_authentication)
        REFERENCES client_authentication_mode (name)
);
-- The unique key leads with load_balancer_id, which covers the health
-- manager's join; this extra single-column index keeps the join plan
-- independent of that detail and is listed in docs/schema.md.
CREATE INDEX listener_load_balancer_id ON listener (load_balancer_id);
CREATE INDEX fk_listener_protocol_name ON listener (protocol);
CREATE INDEX fk_listener_provisioning_status_name ON listener (provisioning_status);
CREATE INDEX fk_listener_operating_status_name ON listener (operating_status);
CREATE INDEX fk_listener_pool_id ON listener (default_pool_id);
-- InnoDB's name is plain "client_authentication"; prefixed as above.
CREATE INDEX listener_client_authentication ON listener (client_authentication);

CREATE TABLE member (
    project_id          varchar(36),
    id                  varchar(36)  NOT NULL,
    pool_id             varchar(36)  NOT NULL,
    subnet_id           varchar(36),
    ip_address          varchar(64),
    protocol_port       integer      NOT NULL,
    weight              integer,
    operating_status    varchar(16)  NOT NULL,
    enabled             boolean      NOT NULL,
    created_at          timestamp without time zone,
    updated_at          timestamp without time zone,
    provisioning_status varchar(16)  NOT NULL,
    name                varchar(255),
    monitor_address     varchar(64),
    monitor_port        integer,
    backup              boolean      NOT NULL,
    CONSTRAINT member_pkey PRIMARY KEY (id),
    CONSTRAINT uq_member_pool_id_address_protocol_port
        UNIQUE (pool_id, ip_address, protocol_port),
    CONSTRAINT fk_member_operating_status_name FOREIGN KEY (operating_status)
        REFERENCES operating_status (name),
    CONSTRAINT fk_member_pool_id FOREIGN KEY (pool_id)
        REFERENCES pool (id),
    CONSTRAINT fk_member_provisioning_status_name FOREIGN KEY (provisioning_status)
        REFERENCES provisioning_status (name)
);
-- As for listener: the unique key leads with pool_id, but the join column
-- gets its own index (docs/schema.md).
CREATE INDEX member_pool_id ON member (pool_id);
CREATE INDEX fk_member_operating_status_name ON member (operating_status);
CREATE INDEX fk_member_provisioning_status_name ON member (provisioning_status);

CREATE TABLE health_monitor (
    project_id          varchar(36),
    id                  varchar(36)   NOT NULL,
    name                varchar(255),
    type                varchar(36)   NOT NULL,
    pool_id             varchar(36)   NOT NULL,
    delay               integer       NOT NULL,
    timeout             integer       NOT NULL,
    fall_threshold      integer       NOT NULL,
    rise_threshold      integer       NOT NULL,
    http_method         varchar(16),
    url_path            varchar(2048),
    expected_codes      varchar(64),
    enabled             boolean       NOT NULL,
    provisioning_status varchar(16)   NOT NULL,
    operating_status    varchar(16)   NOT NULL,
    created_at          timestamp without time zone,
    updated_at          timestamp without time zone,
    http_version        real,
    domain_name         varchar(255),
    CONSTRAINT health_monitor_pkey PRIMARY KEY (id),
    CONSTRAINT uq_health_monitor_pool UNIQUE (pool_id),
    CONSTRAINT fk_health_monitor_pool_id FOREIGN KEY (pool_id)
        REFERENCES pool (id),
    CONSTRAINT fk_health_monitor_health_monitor_type_name FOREIGN KEY (type)
        REFERENCES health_monitor_type (name),
    CONSTRAINT fk_health_monitor_provisioning_status_name FOREIGN KEY (provisioning_status)
        REFERENCES provisioning_status (name),
    CONSTRAINT fk_health_monitor_operating_status_name FOREIGN KEY (operating_status)
        REFERENCES operating_status (name)
);
CREATE INDEX fk_health_monitor_health_monitor_type_name ON health_monitor (type);
CREATE INDEX fk_health_monitor_provisioning_status_name ON health_monitor (provisioning_status);
CREATE INDEX fk_health_monitor_operating_status_name ON health_monitor (operating_status);

-- Both foreign keys were dropped by Octavia's 4a6ec0ab7284; only the
-- amphora_id index remains.
CREATE TABLE listener_statistics (
    listener_id        varchar(36) NOT NULL,
    bytes_in           bigint      NOT NULL,
    bytes_out          bigint      NOT NULL,
    active_connections integer     NOT NULL,
    total_connections  bigint      NOT NULL,
    amphora_id         varchar(36) NOT NULL,
    request_errors     bigint      NOT NULL,
    CONSTRAINT listener_statistics_pkey PRIMARY KEY (listener_id, amphora_id)
);
CREATE INDEX fk_listener_statistic_amphora_id ON listener_statistics (amphora_id);

-- +goose Down
DROP TABLE listener_statistics, health_monitor, member, listener, pool,
    amphora_health, amphora, vip, load_balancer, availability_zone,
    availability_zone_profile, flavor, flavor_profile,
    client_authentication_mode, session_persistence_type,
    health_monitor_type, algorithm, amphora_roles, lb_topology, protocol,
    provisioning_status, operating_status;
