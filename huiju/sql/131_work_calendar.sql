-- The working-day calendar (工作日历) in the warehouse, so SQL can count deadlines in working days
-- (the 双公示 rule: a decision published within 7 working days). The rows come from the one calendar,
-- huiju.workdays (chinesecalendar + config/calendar/<year>.yaml), written by
-- huiju.workdays.sync_work_calendar at bootstrap and on every monitoring run. A day of a year no
-- calendar holds is absent, never guessed.
create table if not exists ops.work_calendar (
    day  date primary key,
    kind text not null check (kind in ('working', 'off'))
);
create index if not exists work_calendar_working on ops.work_calendar (day) where kind = 'working';

-- The n-th working day after start (n = 0: start itself if working, else the next working day), as
-- huiju.workdays.WorkCalendar.add_working_days counts it; null when the count would cross a day the
-- calendar does not hold (a guess would bring the deadline forward against the department) or n < 0.
create or replace function ops.add_working_days(start date, n integer) returns date
language sql stable strict parallel safe as $$
    with target as (
        select day from ops.work_calendar
        where kind = 'working' and day >= start + (n > 0)::integer
        order by day
        offset greatest(n - 1, 0) limit 1
    )
    select target.day from target
    where n >= 0
      and (select count(*) from ops.work_calendar
           where day between start + (n > 0)::integer and target.day) = target.day - (start + (n > 0)::integer) + 1
$$;
