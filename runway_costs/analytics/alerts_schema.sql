-- Alert state and history, written by analytics.alert_store inside collector.store's
-- write session (same lock, same live file, published with the snapshot).
-- Channel URLs are secrets: a channel is stored only as "<scheme>#<position>".

-- One row per (org, rule, target, period key): what was last seen and notified.
CREATE TABLE IF NOT EXISTS alert_state (
    org               VARCHAR   NOT NULL,
    rule              VARCHAR   NOT NULL,
    target            VARCHAR   NOT NULL,  -- '' for the whole org, else a model / budget
    key               VARCHAR   NOT NULL,  -- the period the condition belongs to
    status            VARCHAR   NOT NULL,  -- 'open' | 'resolved' | 'superseded'
    severity          VARCHAR   NOT NULL,  -- 'info' | 'warning' | 'critical' (latest)
    notified_severity VARCHAR   NOT NULL,  -- highest severity announced while open
    value             DOUBLE,
    threshold         DOUBLE,
    message           VARCHAR   NOT NULL,
    first_fired_at    TIMESTAMP NOT NULL,
    last_seen_at      TIMESTAMP NOT NULL,
    resolved_at       TIMESTAMP,
    PRIMARY KEY (org, rule, target, key)
);

-- Every notice announced: fired (new, re-opened or escalated) and resolved.
CREATE SEQUENCE IF NOT EXISTS alert_event_seq;
CREATE TABLE IF NOT EXISTS alert_events (
    event_id  BIGINT    PRIMARY KEY DEFAULT nextval('alert_event_seq'),
    event_at  TIMESTAMP NOT NULL,
    org       VARCHAR   NOT NULL,
    rule      VARCHAR   NOT NULL,
    target    VARCHAR   NOT NULL,
    key       VARCHAR   NOT NULL,
    status    VARCHAR   NOT NULL,  -- 'fired' | 'resolved'
    severity  VARCHAR   NOT NULL,
    value     DOUBLE,
    threshold DOUBLE,
    message   VARCHAR   NOT NULL
);

-- Delivery of each notice to each channel; undelivered ones are retried by later checks.
CREATE TABLE IF NOT EXISTS alert_deliveries (
    event_id        BIGINT    NOT NULL,
    channel         VARCHAR   NOT NULL,  -- e.g. 'json#1', never the URL
    attempts        INTEGER   NOT NULL DEFAULT 0,
    delivered_at    TIMESTAMP,
    last_attempt_at TIMESTAMP,
    last_error      VARCHAR,             -- redacted
    PRIMARY KEY (event_id, channel)
);
