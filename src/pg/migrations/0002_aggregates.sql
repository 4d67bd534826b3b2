-- Migration 2: every aggregate of the store (docs/POSTGRES.md, "The schema").
-- Each table has typed columns for what is looked up, ordered, unique or referenced, and `body`:
-- the domain type's serde JSON, exactly what sled stores for it, which the row codecs
-- (src/pg/rows.rs) read back. The typed columns are written from the same value in the same
-- statement, so they never disagree with the body. Ids are ULIDs in their 26-letter text form.
-- The audit log keeps each entry's stored bytes (bytea), since its hash chain is over them.

CREATE TABLE crier_incidents (
    id              text        PRIMARY KEY,
    kind            text        NOT NULL,
    status          text        NOT NULL,
    impact          text        NOT NULL,
    draft           boolean     NOT NULL,
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL,
    resolved_at     timestamptz,
    next_update_due timestamptz,
    update_count    integer     NOT NULL CHECK (update_count >= 0),
    scheduled_for   timestamptz,
    scheduled_until timestamptz,
    body            jsonb       NOT NULL
);
CREATE INDEX crier_incidents_open ON crier_incidents (updated_at DESC) WHERE resolved_at IS NULL;
CREATE INDEX crier_incidents_due ON crier_incidents (next_update_due)
    WHERE next_update_due IS NOT NULL;
CREATE INDEX crier_incidents_window ON crier_incidents (scheduled_for)
    WHERE scheduled_for IS NOT NULL;

-- The timeline: seq is the update's position (from 1), unique per incident; it orders the
-- timeline (not the ULID, see store/mod.rs `update_key`).
CREATE TABLE crier_updates (
    incident_id  text        NOT NULL REFERENCES crier_incidents (id) ON DELETE CASCADE,
    seq          integer     NOT NULL CHECK (seq >= 1),
    id           text        NOT NULL UNIQUE,
    status       text        NOT NULL,
    draft        boolean     NOT NULL,
    created_at   timestamptz NOT NULL,
    published_at timestamptz,
    body         jsonb       NOT NULL,
    PRIMARY KEY (incident_id, seq)
);

CREATE TABLE crier_components (
    name       text        PRIMARY KEY,
    grp        text,
    status     text        NOT NULL,
    updated_at timestamptz NOT NULL,
    body       jsonb       NOT NULL
);

-- Each status change: from `at` on, the component had `status` (store/history.rs).
CREATE TABLE crier_component_history (
    name   text        NOT NULL,
    at     timestamptz NOT NULL,
    status text        NOT NULL,
    PRIMARY KEY (name, at)
);

-- contact_kind is the channel kind (email | phone); one subscriber per address and kind, as
-- sled's `contacts` tree; the unsubscribe token finds its subscriber.
CREATE TABLE crier_subscribers (
    id                text        PRIMARY KEY,
    contact_kind      text        NOT NULL CHECK (contact_kind IN ('email', 'phone')),
    address           text        NOT NULL,
    unsubscribe_token text        NOT NULL UNIQUE,
    confirmed         boolean     NOT NULL,
    opted_out         boolean     NOT NULL,
    created_at        timestamptz NOT NULL,
    body              jsonb       NOT NULL,
    UNIQUE (contact_kind, address)
);

CREATE TABLE crier_notices (
    id         text        PRIMARY KEY,
    created_at timestamptz NOT NULL,
    last_fired timestamptz,
    body       jsonb       NOT NULL
);

-- Standalone messages posted once per (origin, seq): the scheduler's idempotence record.
CREATE TABLE crier_messages (
    origin text   NOT NULL,
    seq    bigint NOT NULL,
    body   jsonb  NOT NULL,
    PRIMARY KEY (origin, seq)
);

-- A social thread per incident and channel: its root post and the last post.
CREATE TABLE crier_threads (
    incident_id text NOT NULL,
    channel     text NOT NULL,
    root        text NOT NULL,
    last        text NOT NULL,
    PRIMARY KEY (incident_id, channel)
);

-- Intake: alert groups (source, group) and flap hold-downs.
CREATE TABLE crier_alert_groups (
    source      text        NOT NULL,
    grp         text        NOT NULL,
    incident_id text        NOT NULL,
    updated_at  timestamptz NOT NULL,
    body        jsonb       NOT NULL,
    PRIMARY KEY (source, grp)
);

CREATE TABLE crier_holds (
    incident_id text        PRIMARY KEY,
    until_at    timestamptz NOT NULL,
    body        jsonb       NOT NULL
);

-- Webhook signatures seen recently (replay protection), forgotten after `expires_at`.
CREATE TABLE crier_intake_signatures (
    key        bytea       PRIMARY KEY,
    expires_at timestamptz NOT NULL
);

-- A broadcast: one update going out on one channel, expanded into deliveries in batches.
-- incident_id is the origin (an incident, or a notice or approval for standalone messages);
-- seq is bigint: standalone messages' seqs use the top bit of a u32.
CREATE TABLE crier_broadcasts (
    incident_id text        NOT NULL,
    seq         bigint      NOT NULL,
    channel     text        NOT NULL,
    update_id   text        NOT NULL,
    done        boolean     NOT NULL,
    created_at  timestamptz NOT NULL,
    body        jsonb       NOT NULL,
    PRIMARY KEY (incident_id, seq, channel)
);
CREATE INDEX crier_broadcasts_open ON crier_broadcasts (created_at) WHERE NOT done;

-- The outbox grows what the sled Delivery has. `payload` holds the delivery record in the
-- sled store's binary encoding (store/codec.rs), the whole domain value; the claim columns of
-- migration 1 (state, attempts, next_attempt_at, lease) drive the claims.
ALTER TABLE crier_deliveries
    ADD COLUMN delivery_id     text UNIQUE,
    ADD COLUMN incident_id     text,
    ADD COLUMN seq             bigint,
    ADD COLUMN update_id       text,
    ADD COLUMN subscriber_id   text,
    ADD COLUMN delivery_state  text,
    ADD COLUMN parts_done      integer NOT NULL DEFAULT 0,
    ADD COLUMN receipt         text,
    ADD COLUMN provider_status text,
    ADD COLUMN provider_error  bigint;
CREATE INDEX crier_deliveries_incident ON crier_deliveries (incident_id, seq);
CREATE UNIQUE INDEX crier_deliveries_receipt ON crier_deliveries (channel, receipt)
    WHERE receipt IS NOT NULL;

-- Users; the password hash (argon2id PHC string) beside the user, never in `body`.
CREATE TABLE crier_users (
    name          text        PRIMARY KEY,
    role          text        NOT NULL,
    disabled      boolean     NOT NULL,
    created_at    timestamptz NOT NULL,
    password_hash text        NOT NULL,
    body          jsonb       NOT NULL
);

-- Personal API tokens: the SHA-256 of the secret, never the secret.
CREATE TABLE crier_tokens (
    id          text        PRIMARY KEY,
    owner       text        NOT NULL,
    secret_hash bytea       NOT NULL UNIQUE CHECK (length(secret_hash) = 32),
    revoked_at  timestamptz,
    expires_at  timestamptz,
    body        jsonb       NOT NULL
);
CREATE INDEX crier_tokens_owner ON crier_tokens (owner);

-- Browser sessions, found by the SHA-256 of their secret.
CREATE TABLE crier_sessions (
    secret_hash  bytea       PRIMARY KEY CHECK (length(secret_hash) = 32),
    id           text        NOT NULL UNIQUE,
    user_name    text        NOT NULL,
    last_seen_at timestamptz NOT NULL,
    body         jsonb       NOT NULL
);
CREATE INDEX crier_sessions_user ON crier_sessions (user_name);

CREATE TABLE crier_totp (
    user_name text  PRIMARY KEY,
    body      jsonb NOT NULL
);

CREATE TABLE crier_approvals (
    id           text        PRIMARY KEY,
    state        text        NOT NULL,
    incident_id  text        NOT NULL,
    requested_at timestamptz NOT NULL,
    body         jsonb       NOT NULL
);
CREATE INDEX crier_approvals_requested ON crier_approvals (requested_at);

-- Templates; name_key is the name lower-cased (unique, as the sled store checks).
CREATE TABLE crier_templates (
    id       text  PRIMARY KEY,
    name_key text  NOT NULL UNIQUE,
    body     jsonb NOT NULL
);

-- The audit log: append-only. `entry` is the entry's JSON exactly as stored and hashed (the
-- next entry's `prev` is its SHA-256), so `audit verify` walks the same bytes as on sled.
CREATE TABLE crier_audit (
    seq    bigint      PRIMARY KEY CHECK (seq >= 1),
    at     timestamptz NOT NULL,
    actor  text        NOT NULL,
    action text        NOT NULL,
    entry  bytea       NOT NULL
);
CREATE INDEX crier_audit_at ON crier_audit (at);

-- The chain's head: the number and hash of the last entry, one row.
CREATE TABLE crier_audit_head (
    one  boolean PRIMARY KEY DEFAULT true CHECK (one),
    seq  bigint  NOT NULL,
    hash text    NOT NULL
);

CREATE FUNCTION crier_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit log is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER crier_audit_append_only BEFORE UPDATE OR DELETE ON crier_audit
    FOR EACH ROW EXECUTE FUNCTION crier_audit_append_only();
CREATE TRIGGER crier_audit_no_truncate BEFORE TRUNCATE ON crier_audit
    FOR EACH STATEMENT EXECUTE FUNCTION crier_audit_append_only();
