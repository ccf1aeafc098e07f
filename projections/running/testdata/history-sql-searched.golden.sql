-- https://console.cloud.google.com/bigquery?d=bqobserver&p=acme-observer&page=table&project=acme-observer&t=jobs
SELECT project_id, location, job_id, user_email, job_type, statement_type, creation_time, start_time, end_time, total_slot_ms, total_bytes_processed, total_bytes_billed, reservation_id, error_result, labels, query
FROM (
  SELECT *, ARRAY_CONCAT([job_id, IFNULL(user_email, ''), IFNULL(query, '')],
    ARRAY(SELECT CONCAT(t.project_id, '.', t.dataset_id, '.', t.table_id) FROM UNNEST(ARRAY_CONCAT([destination_table], referenced_tables, source_tables)) AS t WHERE t IS NOT NULL),
    ARRAY(SELECT CONCAT(l.key, '=', l.value) FROM UNNEST(labels) AS l)) AS search_text
  FROM `acme-observer.bqobserver.jobs`)
WHERE state = 'DONE'
  AND end_time >= TIMESTAMP 't0+1h0m0s'
  AND end_time < TIMESTAMP 't0+2h0m0s'
  AND EXISTS (SELECT 1 FROM UNNEST(labels) AS l WHERE l.key = 'env' AND l.value = 'prod')
  AND EXISTS (SELECT 1 FROM UNNEST(labels) AS l WHERE l.key = 'team' AND l.value = 'o\'brien')
  AND EXISTS (SELECT 1 FROM UNNEST(search_text) AS s WHERE CONTAINS_SUBSTR(s, 'customers'))
  AND EXISTS (SELECT 1 FROM UNNEST(search_text) AS s WHERE CONTAINS_SUBSTR(s, 'it\'s'))
ORDER BY total_bytes_processed DESC NULLS LAST, project_id, location, job_id
