-- Google's example "Most expensive queries by project".
SELECT
 job_id,
 query,
 user_email,
 total_bytes_processed
FROM `region-us`.INFORMATION_SCHEMA.JOBS
WHERE creation_time BETWEEN TIMESTAMP_SUB(CURRENT_TIMESTAMP(), INTERVAL 1 DAY)
AND CURRENT_TIMESTAMP()
ORDER BY total_bytes_processed DESC
LIMIT 4
