-- The jobs that waited longest for slots, in the form of Google's examples:
-- queued time is from creation to start.
SELECT
  job_id,
  user_email,
  reservation_id,
  TIMESTAMP_DIFF(start_time, creation_time, MILLISECOND) AS queued_ms
FROM
  `region-us`.INFORMATION_SCHEMA.JOBS
WHERE
  creation_time BETWEEN TIMESTAMP_SUB(CURRENT_TIMESTAMP(), INTERVAL 1 DAY) AND CURRENT_TIMESTAMP()
  AND start_time IS NOT NULL
ORDER BY
  queued_ms DESC, job_id
LIMIT 10;
