-- The collector's tables. All timestamps are naive UTC; all credits are integers.
-- Only collector.store writes them; analytics reads them from the published snapshot.
--
-- No index where it would cost more than the rows it guards (issue #12): the history tables
-- (org_snapshots, model_snapshots, usage_revisions, collection_runs) and the per-day tables
-- (model_daily, daily_usage, key_usage, usage_coverage) have no primary key. A key weighed
-- 8-16x the compressed rows (model_snapshots: 82 bytes a row with it, 6.5 without;
-- daily_usage 16x), DuckDB's scans do not use it (they prune by min/max per row group, and
-- rows are appended in time order), and uniqueness is kept by the writer: a snapshot row is
-- written only when it differs from the org's latest (org_latest, model_latest), a row
-- written again at an instant already stored first deletes the old one, and a per-day row
-- is replaced by deleting the old one then inserting, in the same transaction
-- (collector.writes). ensure_schema moves a database from before (keys present) to this
-- layout once. The one-row-per-org (or per org and model) write-state tables keep theirs.

-- An organization's balance and 30-day purchase cap, stored only when either changed
-- since the previous row for that org (a year of 15-minute polling stays small).
CREATE TABLE IF NOT EXISTS org_snapshots (
    org                      VARCHAR   NOT NULL,
    taken_at                 TIMESTAMP NOT NULL,
    credit_balance           BIGINT    NOT NULL,
    max_monthly_credit_spend BIGINT    NOT NULL
    -- unique per (org, taken_at), kept by the writer
);

-- Per-model limits and rolling-24h generations, stored only when something changed
-- for that (org, model). Limits are NULL for a model seen in usage but not in the tier.
CREATE TABLE IF NOT EXISTS model_snapshots (
    org                        VARCHAR   NOT NULL,
    taken_at                   TIMESTAMP NOT NULL,
    model                      VARCHAR   NOT NULL,
    max_concurrent_generations INTEGER,
    max_daily_generations      INTEGER,
    daily_generations          INTEGER   NOT NULL
    -- unique per (org, taken_at, model), kept by the writer
);

-- model_snapshots reduced per (org, UTC day, model), kept by the collector in the same
-- transaction as the snapshot rows (recomputed for the days it touches) so the Limits page
-- reads a row per day instead of every change: the day's last row (its generations and
-- limits, NULL limits kept), the day's highest generations and the last row's time.
CREATE TABLE IF NOT EXISTS model_daily (
    org                        VARCHAR   NOT NULL,
    date                       DATE      NOT NULL,
    model                      VARCHAR   NOT NULL,
    gens_end                   INTEGER   NOT NULL,
    gens_peak                  INTEGER   NOT NULL,
    max_daily_generations      INTEGER,
    max_concurrent_generations INTEGER,
    last_taken_at              TIMESTAMP NOT NULL
    -- unique per (org, date, model), kept by the writer (delete, then insert)
);

-- Net credits per organization, UTC day and model (negative when refunds win).
-- A revised day replaces the old value; collected_at changes only when credits do.
CREATE TABLE IF NOT EXISTS daily_usage (
    org          VARCHAR   NOT NULL,
    date         DATE      NOT NULL,
    model        VARCHAR   NOT NULL,
    credits      BIGINT    NOT NULL,
    collected_at TIMESTAMP NOT NULL
    -- unique per (org, date, model), kept by the writer (delete, then insert)
);

-- One row per organization per collection cycle, committed with that cycle's data.
CREATE SEQUENCE IF NOT EXISTS collection_run_seq;
CREATE TABLE IF NOT EXISTS collection_runs (
    run_id       BIGINT    NOT NULL DEFAULT nextval('collection_run_seq'),  -- unique: a sequence
    org          VARCHAR   NOT NULL,
    kind         VARCHAR   NOT NULL,  -- 'full' | 'snapshot' | 'usage'
    started_at   TIMESTAMP NOT NULL,
    finished_at  TIMESTAMP NOT NULL,
    status       VARCHAR   NOT NULL,  -- 'ok' | 'failed'
    error        VARCHAR,
    http_calls   INTEGER   NOT NULL,
    retries      INTEGER   NOT NULL,
    usage_start  DATE,
    usage_before DATE,
    rows_changed INTEGER   NOT NULL DEFAULT 0,
    -- The org's daily_usage row count and credit sum right after this run committed
    -- (NULL for a failed run): readers check them against daily_usage to prove that
    -- what they see is one whole committed state.
    usage_rows   BIGINT,
    usage_credits BIGINT
);

-- Schema version and publish bookkeeping (key/value).
CREATE TABLE IF NOT EXISTS meta (
    key   VARCHAR PRIMARY KEY,
    value VARCHAR NOT NULL
);

-- Net credits per organization, UTC day and API key, as the usage endpoint reports them in
-- resultsByApiKey (model '' when the API does not split a key's day by model). Written like
-- daily_usage, in the same transaction: a window the API answered with resultsByApiKey
-- replaces that window's rows; a window answered without it leaves them as they are.
CREATE TABLE IF NOT EXISTS key_usage (
    org          VARCHAR   NOT NULL,
    date         DATE      NOT NULL,
    api_key_id   VARCHAR   NOT NULL,
    model        VARCHAR   NOT NULL DEFAULT '',
    credits      BIGINT    NOT NULL,
    collected_at TIMESTAMP NOT NULL
    -- unique per (org, date, api_key_id, model), kept by the writer (delete, then insert)
);

-- Every change to a stored daily_usage value, written in the upsert's transaction: when it
-- was seen, the old and the new credits. old_credits NULL: the day had been collected
-- before and did not have this model; new_credits NULL: the API no longer reports it.
-- old_collected_at: when the old value was collected (for a new model, the last earlier
-- collection that covered the day). A change of a day that was already over when the old
-- value was collected (date < old_collected_at's day) is a restatement, not a day growing.
CREATE TABLE IF NOT EXISTS usage_revisions (
    org              VARCHAR   NOT NULL,
    date             DATE      NOT NULL,
    model            VARCHAR   NOT NULL,
    seen_at          TIMESTAMP NOT NULL,
    old_credits      BIGINT,
    new_credits      BIGINT,
    old_collected_at TIMESTAMP
    -- unique per (org, date, model, seen_at), kept by the writer
);

-- Write-path state (issue #12): what one org's write needs to know about its history, kept
-- by the collector in that org's transaction so a write reads a few rows of its own instead
-- of scanning the org's history. Derived from the tables above (``store.rebuild_write_state``
-- recomputes all of them; ``ensure_schema`` fills them once for a database from before).
-- Readers never need them.

-- Per org: its daily_usage row count and credit sum (moved by each write's delta), and the
-- end of its last ok usage collection (max collection_runs.usage_before of ok runs).
CREATE TABLE IF NOT EXISTS org_usage_totals (
    org               VARCHAR PRIMARY KEY,
    usage_rows        BIGINT  NOT NULL,
    usage_credits     BIGINT  NOT NULL,
    last_usage_before DATE
);

-- Per org: its latest org_snapshots row (the one a new balance is compared with).
CREATE TABLE IF NOT EXISTS org_latest (
    org                      VARCHAR   PRIMARY KEY,
    taken_at                 TIMESTAMP NOT NULL,
    credit_balance           BIGINT    NOT NULL,
    max_monthly_credit_spend BIGINT    NOT NULL
);

-- Per (org, model): its latest model_snapshots row, and day_peak, the highest generations
-- of that row's UTC day (model_daily.gens_peak of the day), so the day's rollup is folded
-- forward without re-reading the day.
CREATE TABLE IF NOT EXISTS model_latest (
    org                        VARCHAR   NOT NULL,
    model                      VARCHAR   NOT NULL,
    taken_at                   TIMESTAMP NOT NULL,
    max_concurrent_generations INTEGER,
    max_daily_generations      INTEGER,
    daily_generations          INTEGER   NOT NULL,
    day_peak                   INTEGER   NOT NULL,
    PRIMARY KEY (org, model)
);

-- Per (org, UTC day): when the last ok collection whose usage window held that day finished
-- (max collection_runs.finished_at over ok runs with usage_start <= date < usage_before):
-- the old_collected_at of a model new on a day already collected.
CREATE TABLE IF NOT EXISTS usage_coverage (
    org        VARCHAR   NOT NULL,
    date       DATE      NOT NULL,
    covered_at TIMESTAMP NOT NULL
    -- unique per (org, date), kept by the writer (delete, then insert)
);

-- Limit roll-up (issue #12), kept by the collector in the org's transaction like
-- model_daily and filled once by ensure_schema (meta 'limit_rollup'); the Limits page for
-- many orgs reads org_limit_daily (orgs x days) instead of carrying each (org, model)
-- over every day (orgs x models x days). Readers fall back without it.

-- Per (org, model): the count in force at 00:00 of the model's latest day (the previous
-- model_daily row's gens_end; NULL for its first row), so the day's peak including
-- midnight can be recomputed by a later write the same day.
CREATE TABLE IF NOT EXISTS model_day_start (
    org        VARCHAR NOT NULL,
    model      VARCHAR NOT NULL,
    date       DATE    NOT NULL,
    gens_start INTEGER
    -- unique per (org, model), kept by the writer (delete then insert), no key: small
);

-- Per (org, UTC day with a model_daily row): used, the highest share of its daily limit
-- any of the org's models reached that day (for a model with a row that day
-- greatest(gens_peak, count at 00:00) / max_daily_generations, for the others their
-- carried gens_end / limit; limit NULL or 0: no share, NULL when no model has one), and
-- used_end, the same at the day's end (gens_end / limit of every model), which the days
-- without a row carry.
CREATE TABLE IF NOT EXISTS org_limit_daily (
    org      VARCHAR NOT NULL,
    date     DATE    NOT NULL,
    used     DOUBLE,
    used_end DOUBLE
    -- unique per (org, date), kept by the writer (delete then insert): a key would weigh
    -- more than these rows
);

-- Archived history (issue #12, collector/archive.py): each immutable Parquet part under
-- <db>.parts/ holding the days of an archived table before its horizon (meta
-- 'archive_horizon:<table>'). A part enters this manifest in the transaction that deletes
-- its rows from the live table, so a snapshot's readers see each row once: live or in a
-- part this snapshot lists. replaced_at: merged into a monthly part then; the file is
-- deleted (with its row) an hour later, when no reader can still list it.
CREATE TABLE IF NOT EXISTS archive_parts (
    table_name  VARCHAR   NOT NULL,
    file        VARCHAR   NOT NULL,  -- file name inside <db>.parts/
    first_day   DATE      NOT NULL,
    last_day    DATE      NOT NULL,
    row_count   BIGINT    NOT NULL,
    written_at  TIMESTAMP NOT NULL,
    replaced_at TIMESTAMP
);
