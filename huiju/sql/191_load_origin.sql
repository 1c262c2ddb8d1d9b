-- Issue 18, backflow (回流): every batch is landed with its origin (数据来源) — 本地 for the city's own
-- departments, 省回流 for the province's credit records that come back through a channel like any
-- department's (config/departments/<code>.yaml: department.origin). Staging carries it to every row,
-- the credit records keep it (a decision a city department also sent is one record, of origin 本地),
-- and the pushes read it: a 省回流 record is never pushed back up to the province.
alter table ops.loads add column if not exists origin text not null default '本地';
alter table ops.loads drop constraint if exists loads_origin_known;
alter table ops.loads add constraint loads_origin_known check (origin in ('本地', '省回流'));
