-- Google's example "Get the last 10 failed jobs".
SELECT
  job_id,
  creation_time,
  user_email,
   error_result
FROM `region-us`.INFORMATION_SCHEMA.JOBS
WHERE
  creation_time > TIMESTAMP_SUB(CURRENT_TIMESTAMP(), INTERVAL 1 DAY) AND
  error_result.reason != "Null"
ORDER BY
  creation_time DESC
LIMIT 10;
