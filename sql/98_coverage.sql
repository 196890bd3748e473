--
-- 98_coverage: the suite calls every public function of the extension at
-- least once.  00_setup turned on track_functions for this database; each
-- earlier file's session reports its calls when it ends.
--
RESET ROLE;
-- wait until the sessions of the earlier files have gone (and flushed their counts)
DO $$
DECLARE
	deadline timestamptz := clock_timestamp() + interval '30 seconds';
BEGIN
	WHILE EXISTS (SELECT 1 FROM pg_stat_activity
				   WHERE datname = current_database() AND pid <> pg_backend_pid()
					 AND backend_type = 'client backend')
		  AND clock_timestamp() < deadline
	LOOP
		PERFORM pg_sleep(0.05);
	END LOOP;
END
$$;
SELECT pg_stat_clear_snapshot();
SELECT current_setting('track_functions') AS track_functions;
-- Public functions no regression test has called (expected: none).
SELECT p.oid::regprocedure AS never_called
  FROM pg_proc p
 WHERE p.pronamespace = 'agent_tasks'::regnamespace
   AND NOT EXISTS (SELECT 1 FROM pg_stat_user_functions s WHERE s.funcid = p.oid AND s.calls > 0)
 ORDER BY p.proname;
-- The functions of the foundation are all called.
SELECT count(*) AS foundation_functions_called
  FROM pg_proc p
  JOIN pg_stat_user_functions s ON s.funcid = p.oid AND s.calls > 0
 WHERE p.pronamespace = 'agent_tasks'::regnamespace
   AND p.proname IN ('uuid_v7', 'uuid_v7_time', 'status_kind', 'current_account', 'current_user_email',
					 'get_task', 'create_task', 'update_task', 'archive_task', 'unarchive_task',
					 'delete_task', 'list_tasks', 'process_task', 'stop_task', 'cancel_task',
					 'retry_task', 'set_task_status', 'set_assignees', 'add_followers',
					 'remove_followers', 'send_message', 'send_feedback', 'add_dependency',
					 'remove_dependency');
