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
