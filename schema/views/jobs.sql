-- One row per job: its latest version in job_versions. A version that folds
-- more of the job's events is a later one (the event log only grows); among
-- versions that fold as many, the one written last wins, so duplicates,
-- redeliveries and replays never double a job. The columns are named and
-- typed as in INFORMATION_SCHEMA.JOBS wherever the two overlap.
SELECT *
FROM `{{.Project}}.{{.Dataset}}.job_versions`
WHERE TRUE
QUALIFY ROW_NUMBER() OVER (
  PARTITION BY project_id, location, job_id
  ORDER BY event_count DESC, version_time DESC
) = 1
