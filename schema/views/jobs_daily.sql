-- Finished jobs per day of creation (UTC), project and user: how many, how
-- many failed, bytes billed, slot-hours and the on-demand cost estimate.
-- This is what the Looker Studio report reads.
SELECT
  DATE(COALESCE(creation_time, first_seen)) AS day,
  project_id,
  user_email,
  COUNT(*) AS jobs,
  COUNTIF(error_result.reason IS NOT NULL) AS failures,
  SUM(total_bytes_billed) AS total_bytes_billed,
  SUM(total_slot_ms) / (1000 * 60 * 60) AS slot_hours,
  SUM(estimated_cost_usd) AS estimated_cost_usd
FROM `{{.Project}}.{{.Dataset}}.jobs`
WHERE state = 'DONE'
GROUP BY day, project_id, user_email
