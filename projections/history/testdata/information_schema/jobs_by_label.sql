-- Jobs and bytes billed by label, in the form of Google's examples (labels is
-- a repeated key and value, as in INFORMATION_SCHEMA.JOBS).
SELECT
  label.key,
  label.value,
  COUNT(*) AS jobs,
  SUM(total_bytes_billed) AS bytes_billed
FROM
  `region-us`.INFORMATION_SCHEMA.JOBS, UNNEST(labels) AS label
WHERE
  creation_time BETWEEN TIMESTAMP_SUB(CURRENT_TIMESTAMP(), INTERVAL 7 DAY) AND CURRENT_TIMESTAMP()
GROUP BY
  label.key,
  label.value
ORDER BY
  jobs DESC, label.key, label.value;
