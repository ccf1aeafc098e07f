-- Google's example "Query the list of long running jobs".
SELECT
  job_id,
  job_type,
  state,
  creation_time,
  start_time,
  user_email
 FROM `region-us`.INFORMATION_SCHEMA.JOBS
 WHERE
  creation_time BETWEEN TIMESTAMP_SUB(CURRENT_TIMESTAMP(), INTERVAL 1 DAY) AND CURRENT_TIMESTAMP() AND
  state!="DONE" AND
  timestamp_diff(CURRENT_TIMESTAMP(), creation_time, MINUTE) > 30;
