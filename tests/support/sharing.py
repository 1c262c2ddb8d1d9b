"""What the sharing tests share: small stand-ins for the share relations the catalogue publishes."""

from __future__ import annotations

# Stand-ins for dbt's share views (the columns the tests read, as dbt's contracts type them), owned by the
# transformation as dbt's are. Names in the share rows are masked as the real views mask them.
SHARE_RELATIONS = """
set local role huiju_transform;
create table share.share_legal_person (uscc text, legal_person_name text, legal_person_type text, legal_rep text,
    region_code text, region_name text, is_authority boolean, known_to_departments text[]);
insert into share.share_legal_person values
    ('91330100MA0000001A', '甲公司', '企业法人', '张*', '330102', '上城区', false, '{scjgj}'),
    ('91330100MA0000002B', '乙公司', '企业法人', '李*', '330105', '拱墅区', false, '{scjgj}'),
    ('91330100MA0000003C', '丙公司', '企业法人', '王*', '330102', '上城区', false, '{swj}');
create table share.share_natural_person_penalty_publication (decision_no text, party_name text, party_type text,
    penalty_type text, fine_amount_wan numeric, decision_date date, authority text, source_department text);
insert into share.share_natural_person_penalty_publication values
    ('杭市监罚〔2026〕1号', '赵*', '自然人', '罚款', 0.5, '2026-11-02', '市市场监督管理局', 'scjgj'),
    ('杭税罚〔2026〕7号', '钱*', '自然人', '罚款', 1.2, '2026-11-03', '市税务局', 'swj');
create table share.share_natural_person_license_publication (decision_no text, party_name text,
    license_category text, authority text, source_department text);
insert into share.share_natural_person_license_publication values
    ('杭建许〔2026〕3号', '孙*', '建筑施工特种作业操作资格', '市住房和城乡建设局', 'zjj');
create table share.share_legal_person_penalty_publication (decision_no text, party_name text, uscc text,
    legal_rep_id_no text, penalty_type text, authority text, source_department text);
insert into share.share_legal_person_penalty_publication values
    ('杭市监罚〔2026〕2号', '甲公司', '91330100MA0000001A', '330102********001X', '警告', '市市场监督管理局', 'scjgj');
"""
