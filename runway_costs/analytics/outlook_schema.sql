-- Stored outlooks (issue #12): each organization's forecast at a cycle's instant, computed
-- once per collection cycle by analytics.outlook inside the cycle's write session (same
-- lock, same live file) and published with the data it was computed from. Only the
-- latest cycle's rows are kept: a cycle drops and creates them again in one transaction.

-- One row per organization: everything `forecast --json`, the alert rules and the
-- Overview page show of it (analytics.forecast.OrgForecast), credits only (USD at read).
CREATE TABLE IF NOT EXISTS org_outlooks (
    org                      VARCHAR   NOT NULL,
    as_of                    TIMESTAMP NOT NULL,  -- the cycle's instant
    balance_credits          BIGINT,
    cap_credits              BIGINT,
    spend_today_credits      BIGINT    NOT NULL,
    spend_mtd_credits        BIGINT    NOT NULL,
    spend_30d_credits        BIGINT    NOT NULL,
    purchases_30d_credits    BIGINT    NOT NULL,
    month_to_date            BIGINT    NOT NULL,  -- the month-end forecast's own figure
    month_end_low            BIGINT    NOT NULL,
    month_end_mid            BIGINT    NOT NULL,
    month_end_high           BIGINT    NOT NULL,
    daily_rate_credits       BIGINT    NOT NULL,
    runout_date              DATE,
    cap_bound_date           DATE,
    cap_peak_30d_credits     BIGINT,
    purchases_observed_days  INTEGER   NOT NULL,
    purchases_observed_since TIMESTAMP,
    balances_observed_since  TIMESTAMP,
    daily_mid                DOUBLE[]  NOT NULL,  -- forecast spend per day from as_of's day
    actual_30d               BIGINT[]  NOT NULL,  -- net spend per day, the 30-day window
    last_success             TIMESTAMP,           -- last successful collection (NULL: never)
    -- the month-end interval's past-origin ratios, kept for the next cycle: reused while
    -- interval_key (complete days, last day, days left in the month) is unchanged
    interval_key             VARCHAR,
    ratio_count              INTEGER,
    ratio_lo                 DOUBLE,
    ratio_hi                 DOUBLE
);

-- One row: the roll-up of every organization the outlooks were computed for (the
-- all-organizations Overview): the month end of their summed spend with its interval,
-- their summed daily spend over the 30-day window and summed forecast, and how long the
-- cycle's computation took.
CREATE TABLE IF NOT EXISTS outlook_rollup (
    as_of          TIMESTAMP NOT NULL,
    orgs           VARCHAR[] NOT NULL,
    month_to_date  BIGINT    NOT NULL,
    month_end_low  BIGINT    NOT NULL,
    month_end_mid  BIGINT    NOT NULL,
    month_end_high BIGINT    NOT NULL,
    daily_mid      DOUBLE[]  NOT NULL,
    actual_30d     BIGINT[]  NOT NULL,
    seconds        DOUBLE    NOT NULL
);

-- Per (org, model) with a daily generation limit: the row in force at the cycle's instant
-- (analytics.limits.limits_now), for the daily generation alert rule.
CREATE TABLE IF NOT EXISTS outlook_limits (
    org                   VARCHAR NOT NULL,
    model                 VARCHAR NOT NULL,
    daily_generations     BIGINT,
    max_daily_generations BIGINT,
    usage_ratio           DOUBLE
);

-- Per (org, model): the Limits page's "now" table at the cycle's instant
-- (analytics.limits.limit_summary, in_now) and the limits in force then, which the tier is
-- matched on (analytics.limits.limits_at, in_force): read by the page instead of 30 days
-- of model_daily when these rows are current.
CREATE TABLE IF NOT EXISTS outlook_limit_now (
    org                        VARCHAR NOT NULL,
    model                      VARCHAR NOT NULL,
    in_now                     BOOLEAN NOT NULL,
    daily_generations          INTEGER,
    max_daily_generations      INTEGER,
    max_concurrent_generations INTEGER,
    observed_at                TIMESTAMP,
    peak_7d                    INTEGER,
    days_at_limit_30d          UINTEGER,
    in_force                   BOOLEAN NOT NULL,
    force_concurrent           INTEGER,
    force_daily                INTEGER
);

-- One row per organization: its tier facts at the cycle's instant (analytics.tiers.
-- tier_facts: the cap, when its current run began, net spend), and its cap's run at
-- kept_at (a day behind: a clock set back less than that still finds its rows after it),
-- from which the next cycle reads only the snapshots after kept_at; anchors_before: the
-- day its rows of outlook_limit_anchors are in force at (NULL: none kept).
CREATE TABLE IF NOT EXISTS outlook_tiers (
    org                  VARCHAR   NOT NULL,
    cap_credits          BIGINT,
    cap_since            TIMESTAMP,
    since_first_snapshot BOOLEAN   NOT NULL,
    spend_credits        BIGINT    NOT NULL,
    kept_at              TIMESTAMP NOT NULL,
    kept_cap             BIGINT,
    kept_since           TIMESTAMP,
    kept_first           BOOLEAN   NOT NULL,
    anchors_before       DATE
);

-- Per (org, model): its model_daily row in force at 00:00 of the 30-day window's first
-- day (analytics.limits.limit_anchors), from which the next cycle's "now" table reads
-- only the days since instead of every earlier day.
CREATE TABLE IF NOT EXISTS outlook_limit_anchors (
    org           VARCHAR   NOT NULL,
    model         VARCHAR   NOT NULL,
    date          DATE      NOT NULL,
    gens_end      INTEGER   NOT NULL,
    lim           INTEGER,
    conc          INTEGER,
    last_taken_at TIMESTAMP NOT NULL
);
