-- https://console.cloud.google.com/bigquery?d=bqobserver&p=acme-observer&page=table&project=acme-observer&t=jobs
SELECT project_id, location, job_id, user_email, job_type, statement_type, creation_time, start_time, end_time, total_slot_ms, total_bytes_processed, total_bytes_billed, reservation_id, error_result, labels, query
FROM `acme-observer.bqobserver.jobs`
WHERE state = 'DONE'
  AND end_time >= TIMESTAMP 't0+1h0m0s'
  AND end_time < TIMESTAMP 't0+2h0m0s'
ORDER BY end_time DESC NULLS LAST, project_id, location, job_id
