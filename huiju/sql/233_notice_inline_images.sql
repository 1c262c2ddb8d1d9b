-- A notice may carry images shown in its e-mail's body (a report's charts): PNG files (paths under var/,
-- like attachment) the e-mail sender sends as a multipart/related HTML body, each referenced by cid:.
-- Robots (DingTalk, WeCom) ignore them, as they ignore attachments.
alter table ops.notices add column if not exists inline_images text[] not null default '{}';
