--
-- 30_url_policy: the outbound URL policy (SSRF protection) at registration:
-- every blocked range, every spelling of an address, user information,
-- schemes, localhost; the superuser settings allow_insecure_loopback,
-- http_allowed_cidrs and http_plain_allowed; the PT400 errors of
-- create_task, create_agent and alter_agent.  (Connect-time refusals need
-- the dispatcher: test/http/run.sh.)
--
\set SHOW_CONTEXT never
RESET ROLE;
-- (superuser settings; pinned here whatever the server's configuration says)
SET agent_tasks.allow_insecure_loopback = off;
SET agent_tasks.http_allowed_cidrs = '';
SET agent_tasks.http_plain_allowed = '';

SELECT u AS url, coalesce(agent_tasks_internal.url_policy_violation(u), 'allowed') AS verdict
  FROM unnest(ARRAY[
	-- allowed
	'https://example.com/hook', 'https://api.example.com:8443/v1?x=1#f', 'https://8.8.8.8/',
	'https://[2606:4700::1111]/', 'https://EXAMPLE.com./', 'https://xn--bcher-kva.example/',
	-- schemes and shapes
	'http://example.com/', 'ftp://example.com/', 'HTTPS://example.com/', 'example.com/hook',
	'https://', 'https://:443/', 'https://example.com:0/', 'https://example.com:65536/',
	'https://example.com:12ab/', 'https://exa mple.com/', 'https://example.com\@evil.com/',
	'https://bücher.example/',
	-- user information
	'https://user@example.com/', 'https://user:pw@example.com/', 'https://example.com@10.0.0.1/',
	'https://@example.com/',
	-- localhost
	'https://localhost/', 'https://LocalHost:8080/', 'https://localhost./', 'https://app.localhost/',
	-- every blocked IPv4 range
	'https://0.1.2.3/', 'https://10.20.30.40/', 'https://100.64.0.1/', 'https://100.127.255.255/',
	'https://127.0.0.1/', 'https://127.255.0.1/', 'https://169.254.169.254/', 'https://172.16.0.1/',
	'https://172.31.255.255/', 'https://192.0.0.8/', 'https://192.0.2.1/', 'https://192.168.0.1/',
	'https://198.18.0.1/', 'https://198.19.255.255/', 'https://198.51.100.7/', 'https://203.0.113.1/',
	'https://224.0.0.251/', 'https://239.255.255.250/', 'https://240.0.0.1/', 'https://255.255.255.255/',
	-- neighbours that are public
	'https://100.63.255.255/', 'https://100.128.0.1/', 'https://172.15.255.255/', 'https://172.32.0.1/',
	'https://192.0.1.1/', 'https://198.17.255.255/', 'https://198.20.0.1/', 'https://223.255.255.255/',
	-- other spellings of 127.0.0.1 and 169.254.169.254
	'https://2130706433/', 'https://0x7f000001/', 'https://017700000001/', 'https://0177.0.0.1/',
	'https://0x7f.0.0.1/', 'https://127.1/', 'https://127.0.1/', 'https://0x7f.1/',
	'https://0xA9.0xFE.0xA9.0xFE/', 'https://0251.0376.0251.0376/', 'https://2852039166/',
	'https://0/', 'https://0x/', 'https://127.0.0.1./',
	'https://256.1.1.1/', 'https://1.2.3.4.5/', 'https://08.1.1.1/',
	-- IPv6: blocked ranges and the forms that carry an IPv4 address
	'https://[::]/', 'https://[::1]/', 'https://[0:0:0:0:0:0:0:1]/', 'https://[fc00::1]/',
	'https://[fd12:3456::1]/', 'https://[fe80::1]/', 'https://[febf::1]/', 'https://[fec0::1]/',
	'https://[ff02::1]/', 'https://[2001:db8::1]/', 'https://[100::1]/', 'https://[64:ff9b:1::1]/',
	'https://[::ffff:127.0.0.1]/', 'https://[::ffff:7f00:1]/', 'https://[::ffff:10.0.0.1]/',
	'https://[::ffff:8.8.8.8]/', 'https://[64:ff9b::169.254.169.254]/', 'https://[64:ff9b::808:808]/',
	'https://[::127.0.0.1]/', 'https://[2002:a9fe:a9fe::1]/', 'https://[2002:808:808::1]/',
	'https://[fe80::1%25eth0]/', 'https://[::1/', 'https://[::1]x/', 'https://[zz::1]/'
  ]) AS u;

-- The error every registration gives: PT400 with the reason.
SET ROLE regress_app;
SET agent_tasks.account = 'policy';
SET agent_tasks.email = 'alice@example.com';
SELECT expect_error($$SELECT agent_tasks.create_task('t', callback_url => 'https://169.254.169.254/latest/meta-data')$$);
SELECT expect_error($$SELECT agent_tasks.create_task('t', callback_url => 'https://hooks.example.com@10.0.0.5/')$$);
SELECT expect_error($$SELECT agent_tasks.create_agent('p1', 'http', 'https://[::ffff:192.168.1.1]/agent')$$);
SELECT expect_error($$SELECT agent_tasks.create_agent('p1', 'openai', 'http://llm.example.com/v1')$$);
SELECT expect_error($$SELECT agent_tasks.create_agent('p1', 'http', 'https://localhost:8080/')$$);
SELECT name, kind, target FROM agent_tasks.create_agent('p1', 'http', 'https://agents.example.com/run');
SELECT expect_error($$SELECT agent_tasks.alter_agent('p1', '{"target": "https://0x7f.1/"}')$$);
SELECT target FROM agent_tasks.agents WHERE name = 'p1';
-- the settings are superuser-only
SELECT expect_error($$SET agent_tasks.allow_insecure_loopback = on$$);
SELECT expect_error($$SET agent_tasks.http_allowed_cidrs = '10.0.0.0/8'$$);
SELECT expect_error($$SET agent_tasks.http_resolve = 'a.example:443:10.0.0.1'$$);

-- Loopback for tests and local development: loopback only, http allowed there.
RESET ROLE;
SET agent_tasks.allow_insecure_loopback = on;
SELECT u AS url, coalesce(agent_tasks_internal.url_policy_violation(u), 'allowed') AS verdict
  FROM unnest(ARRAY['http://127.0.0.1:8080/agent', 'https://127.0.0.1/', 'http://127.9.9.9/',
					'http://2130706433:81/', 'http://localhost:3000/', 'http://api.localhost/',
					'http://[::1]:8080/', 'http://[::ffff:127.0.0.1]/', 'http://example.com/',
					'http://10.0.0.1/', 'https://192.168.1.1/', 'https://[::2]/',
					'http://user@127.0.0.1/']) AS u;
SET ROLE regress_app;
SELECT name, target FROM agent_tasks.create_agent('p2', 'http', 'http://127.0.0.1:9/agent');
RESET ROLE;
SET agent_tasks.allow_insecure_loopback = off;

-- An operator's allow-list of private ranges (https still required).
SET agent_tasks.http_allowed_cidrs = '10.1.0.0/16, fd00:1::/64,192.168.7.7';
SHOW agent_tasks.http_allowed_cidrs;
SELECT u AS url, coalesce(agent_tasks_internal.url_policy_violation(u), 'allowed') AS verdict
  FROM unnest(ARRAY['https://10.1.2.3/', 'https://10.2.0.1/', 'https://[fd00:1::5]/', 'https://[fd00:2::5]/',
					'https://[::ffff:10.1.0.9]/', 'https://192.168.7.7/', 'https://192.168.7.8/',
					'http://10.1.2.3/', 'https://167837955/']) AS u;
SELECT expect_error($$SET agent_tasks.http_allowed_cidrs = '10.0.0.0/33'$$);
SELECT expect_error($$SET agent_tasks.http_allowed_cidrs = 'intranet'$$);
SET agent_tasks.http_allowed_cidrs = '';
SELECT agent_tasks_internal.url_policy_violation('https://10.1.2.3/');

-- Plain http on named private networks (agents on a compose network): the
-- private ranges and host names an operator lists; everything else https.
SET agent_tasks.http_plain_allowed = '172.16.0.0/12, agent,Ollama., *.internal, fd00:7::/48';
SHOW agent_tasks.http_plain_allowed;
SELECT u AS url, coalesce(agent_tasks_internal.url_policy_violation(u), 'allowed') AS verdict
  FROM unnest(ARRAY['http://172.18.0.5:8080/run', 'https://172.18.0.5/run', 'http://[::ffff:172.18.0.5]/',
					'http://2886860805/', 'http://agent:8080/run', 'http://AGENT./run', 'https://agent/',
					'http://ollama:11434/v1', 'http://vllm.internal/v1', 'http://a.b.internal/',
					'http://internal/', 'http://notagent/', 'http://agent.example.com/', 'http://[fd00:7::1]/',
					'http://[fd00:8::1]/', 'http://10.0.0.5/', 'http://192.168.1.1/', 'http://example.com/',
					'http://8.8.8.8/', 'http://172.15.0.1/', 'http://169.254.169.254/', 'http://localhost/',
					'http://user@agent/']) AS u;
SET ROLE regress_app;
SELECT name, target FROM agent_tasks.create_agent('p3', 'http', 'http://agent:8080/run');
RESET ROLE;
-- only private and loopback ranges; a name needs a range to resolve into
SELECT expect_error($$SET agent_tasks.http_plain_allowed = '0.0.0.0/0'$$);
SELECT expect_error($$SET agent_tasks.http_plain_allowed = '8.8.8.0/24, agent'$$);
SELECT expect_error($$SET agent_tasks.http_plain_allowed = '169.254.0.0/16'$$);
SELECT expect_error($$SET agent_tasks.http_plain_allowed = '172.0.0.0/8'$$);
SELECT expect_error($$SET agent_tasks.http_plain_allowed = '::/0'$$);
SELECT expect_error($$SET agent_tasks.http_plain_allowed = '10.0.0.0/8, 1.2.3'$$);
SELECT expect_error($$SET agent_tasks.http_plain_allowed = '10.0.0.0/8, bad!host'$$);
SELECT expect_error($$SET agent_tasks.http_plain_allowed = 'agent, ollama'$$);
SET agent_tasks.http_plain_allowed = '127.0.0.0/8';
SELECT agent_tasks_internal.url_policy_violation('http://127.0.0.1:8080/') AS loopback_listed;
-- without it, plain http is refused, with a reason and a hint that name the
-- setting (issue 11: a range in http_allowed_cidrs is for https only)
SET agent_tasks.http_plain_allowed = '';
SET agent_tasks.http_allowed_cidrs = '172.16.0.0/12';
SELECT expect_error($$SELECT agent_tasks_internal.check_url('url', 'http://172.18.0.5:8080/run')$$);
SET agent_tasks.http_allowed_cidrs = '';
SET ROLE regress_app;
SELECT expect_error($$SET agent_tasks.http_plain_allowed = '10.0.0.0/8'$$);
RESET ROLE;

-- check_url keeps its shape checks, then applies the policy.
SELECT expect_error($$SELECT agent_tasks_internal.check_url('url', 'gopher://x')$$);
SELECT expect_error($$SELECT agent_tasks_internal.check_url('url', 'https://10.0.0.1/')$$);
SELECT agent_tasks_internal.check_url('url', 'https://example.com/ok'), agent_tasks_internal.check_url('url', NULL);

SET ROLE regress_app;
SELECT agent_tasks.drop_agent('p1'), agent_tasks.drop_agent('p2'), agent_tasks.drop_agent('p3');
RESET ROLE;
