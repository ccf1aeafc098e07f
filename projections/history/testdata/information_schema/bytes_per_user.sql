-- Google's example "Bytes processed per user identity": on demand, what each
-- user costs.
SELECT
  user_email,
  SUM(total_bytes_processed) AS bytes_processed
FROM
  `region-us`.INFORMATION_SCHEMA.JOBS
WHERE
  creation_time BETWEEN TIMESTAMP_SUB(CURRENT_TIMESTAMP(), INTERVAL 7 DAY) AND CURRENT_TIMESTAMP()
  AND job_type = 'QUERY'
  AND statement_type != 'SCRIPT'
GROUP BY
  user_email;
