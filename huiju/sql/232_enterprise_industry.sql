-- 企业登记 gains 行业代码 (industry_code, 国民经济行业分类): the analysis layer counts the penalties and
-- licences of legal persons by the industry their registration names (analysis_industry_statistics).
-- Landing adds a dataset's new field to its raw table with the next batch (huiju/landing/raw.py); a
-- warehouse that already holds 企业登记 batches gets the column now, so the staging model, which reads
-- it, builds before the next batch arrives (the batches before it have no industry: NULL).
do $$
begin
    if to_regclass('raw.enterprise_registration') is not null then
        alter table raw.enterprise_registration add column if not exists industry_code text;
    end if;
end
$$;
