-- The jobs whose latest version is not DONE: the live list, in SQL. A job
-- whose end was never heard of stays here until enrichment reconciles it.
SELECT *
FROM `{{.Project}}.{{.Dataset}}.jobs`
WHERE state IS NULL OR state != 'DONE'
