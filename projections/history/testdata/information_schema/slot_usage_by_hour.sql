-- Slot usage by hour: Google's "Hourly breakdown of bytes processed" with the
-- slot time of "Calculate average slot utilization" (slot-ms over an hour's
-- 3,600,000 ms is the hour's average slots).
SELECT
  TIMESTAMP_TRUNC(end_time, HOUR) AS time_window,
  SUM(total_slot_ms) / (1000 * 60 * 60) AS avg_slots
FROM
  `region-us`.INFORMATION_SCHEMA.JOBS
WHERE
  creation_time BETWEEN TIMESTAMP_SUB(CURRENT_TIMESTAMP(), INTERVAL 7 DAY) AND CURRENT_TIMESTAMP()
  AND job_type = 'QUERY'
  AND statement_type != 'SCRIPT'
GROUP BY
  time_window
ORDER BY
  time_window DESC;
