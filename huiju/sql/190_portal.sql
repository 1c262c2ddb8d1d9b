-- Issue 19: the departments' portal (package huiju_portal): accounts and roles, server-side
-- sessions, login throttling, who submitted which batch, and the portal's audit trail.
--
-- The portal's own state lives in schema portal; what departments submit goes through the
-- core's ledger (ops.loads) like every other channel, and portal.submissions only says who
-- submitted it and how.
create schema if not exists portal;

-- An account belongs to one department (报送员 submitter, 审批人 approver) or to the bureau
-- (数据管理员 steward, no department). Passwords: argon2id hashes only.
create table if not exists portal.accounts (
    account_id           bigserial primary key,
    username             text not null unique check (username ~ '^[a-z][a-z0-9_.-]{2,63}$'),
    display_name         text not null,
    department           text,                   -- config/departments/<code>.yaml; null for the bureau's stewards
    roles                text[] not null
        check (cardinality(roles) > 0 and roles <@ array['submitter', 'approver', 'steward']),
    password_hash        text not null,          -- argon2id, PHC string format
    must_change_password boolean not null default false,
    password_changed_at  timestamptz not null default now(),
    disabled_at          timestamptz,
    created_at           timestamptz not null default now(),
    created_by           text,
    -- A department's roles need a department; only a steward may have none.
    check (department is not null or roles = array['steward'])
);

-- Server-side sessions: the cookie holds a random token, the table only its sha256, so a copy of
-- the table logs nobody in. Expiry is both idle (last_seen_at) and absolute (expires_at);
-- logging out, disabling an account or changing its password revokes them.
create table if not exists portal.sessions (
    token_sha256  text primary key,
    account_id    bigint not null references portal.accounts (account_id) on delete cascade,
    csrf_token    text not null,                 -- the synchroniser token every POST must carry
    created_at    timestamptz not null default now(),
    last_seen_at  timestamptz not null default now(),
    expires_at    timestamptz not null,
    revoked_at    timestamptz,
    client_addr   text
);
create index if not exists sessions_account on portal.sessions (account_id);

-- Failed logins, per account name and per client address: the throttle counts them over a
-- window, and they survive a restart of the portal. A successful login clears its account's.
create table if not exists portal.login_failures (
    failure_id  bigserial primary key,
    username    text not null,                   -- as typed (lower-cased), whether or not it exists
    client_addr text not null,
    failed_at   timestamptz not null default now()
);
create index if not exists login_failures_username on portal.login_failures (username, failed_at);
create index if not exists login_failures_client on portal.login_failures (client_addr, failed_at);

-- Who submitted a batch through the portal, and how (文件上传 or 人工录入).
create table if not exists portal.submissions (
    load_id       text primary key references ops.loads (load_id),
    account_id    bigint not null references portal.accounts (account_id),
    kind          text not null check (kind in ('upload', 'entry')),
    submitted_at  timestamptz not null default now(),
    client_addr   text
);
create index if not exists submissions_account on portal.submissions (account_id, submitted_at);

-- The portal's audit trail (操作日志): logins, refusals, submissions, downloads, account changes.
-- Details never hold a password, an ID number or a mobile number in clear.
create table if not exists portal.events (
    event_id     bigserial primary key,
    at           timestamptz not null default now(),
    kind         text not null,                  -- login, login_failed, logout, upload, upload_refused, entry, …
    account_id   bigint references portal.accounts (account_id) on delete set null,
    username     text,
    department   text,
    client_addr  text,
    detail       jsonb not null default '{}'
);
create index if not exists events_department on portal.events (department, at);
create index if not exists events_kind on portal.events (kind, at);
