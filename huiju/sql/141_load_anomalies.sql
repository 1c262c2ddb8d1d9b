-- Anomaly alerts (预测预警, issue 16): a batch whose row count or pass rate departs sharply from
-- its source's own history. One row per batch and metric found anomalous, written with the
-- batch's validation verdict; a batch held for it (action 'hold') waits for a steward's release.
create table if not exists ops.load_anomalies (
    load_id     text not null references ops.loads (load_id),
    metric      text not null check (metric in ('rows', 'pass_rate')),
    value       double precision not null,
    median      double precision not null,   -- of the comparable history
    spread      double precision not null,   -- 1.4826 × MAD, with a floor
    score       double precision not null,   -- (value − median) / spread
    history     integer not null,            -- comparable batches judged against
    weekday     smallint,                    -- ISO weekday compared on (1 = Monday), null: every day
    action      text not null check (action in ('alert', 'hold')),
    detected_at timestamptz not null default now(),
    released_at timestamptz,                 -- a held batch released by a steward
    released_by text,
    primary key (load_id, metric)
);
create index if not exists load_anomalies_detected on ops.load_anomalies (detected_at);
