# Secrets never reach the server log (issue 10).  With PostgreSQL's default
# log_min_error_statement (error), a failing statement is logged with its
# text; a statement that passes a secret (set_agent_secret, create_webhook,
# rotate_webhook_secret, a run token or an API key) must not be.  Each call
# below fails in a different place: in the function, before it (privileges,
# a malformed argument), or in a function of the user's that passes the
# secret on.  Then log_statement = 'all' and log_min_duration_statement = 0,
# which log every statement: the lines are there, the secrets are not.
# And a failing statement without a secret is still logged with its text.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use AgentTasksTest;

my $node = AgentTasksTest::new_node('secrets_log');
# (PostgreSQL::Test::Cluster logs every statement; here only where asked)
$node->append_conf('postgresql.conf', "log_min_error_statement = error\nlog_statement = none\n");
$node->start;
$node->safe_psql('postgres', q{
	CREATE EXTENSION agent_tasks;
	CREATE ROLE sec_admin LOGIN IN ROLE agent_tasks_admin;
	CREATE ROLE sec_nobody LOGIN;
	GRANT USAGE ON SCHEMA agent_tasks TO sec_nobody;
	SET agent_tasks.account = 'sec';
	SELECT agent_tasks.create_agent('llm', 'openai', 'https://llm.example.com/v1/');
	SELECT agent_tasks.create_agent('worker', 'external');
});

my $token = 'rt_' . ('Q' x 43);
my $api_key = 'at_' . ('K' x 43);
my %secret = (
	agent_not_found => 'sk-SECRET-AGENT-NOT-FOUND',
	agent_too_long  => 'sk-SECRET-TOO-LONG',
	agent_no_grant  => 'sk-SECRET-NO-GRANT',
	agent_nested    => 'sk-SECRET-NESTED',
	webhook_bad_url => 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw',
	webhook_bad_arg => 'whsec_AAAAbbbbCCCCddddEEEEffffGGGGhhhh0000',
	webhook_rotate  => 'whsec_ZZZZbbbbCCCCddddEEEEffffGGGGhhhh1111',
	webhook_bad     => 'whsec_not*base64*SECRET',
	run_token       => $token,
	api_key         => $api_key,
	logged_all      => 'sk-SECRET-LOG-STATEMENT',
	logged_duration => 'sk-SECRET-LOG-DURATION',
);

# Run SQL that must fail; return its stderr.
sub fails
{
	my ($sql, %opts) = @_;
	my ($ret, $out, $err) = $node->psql('postgres', $sql, %opts);
	isnt($ret, 0, "fails: " . substr($sql =~ s/\s+/ /gr, 0, 90));
	return $err;
}

my $as_admin = "SET ROLE sec_admin; SET agent_tasks.account = 'sec';";
fails("$as_admin SELECT agent_tasks.set_agent_secret('nope', '$secret{agent_not_found}')");
fails("$as_admin SELECT agent_tasks.set_agent_secret('llm', repeat('x', 10001) || '$secret{agent_too_long}')");
fails("SET ROLE sec_nobody; SELECT agent_tasks.set_agent_secret('llm', '$secret{agent_no_grant}')");
fails("$as_admin SELECT agent_tasks.create_webhook('ftp://example.com/hook', '{*}', '$secret{webhook_bad_url}')");
fails("$as_admin SELECT agent_tasks.create_webhook('https://example.com/hook', '{*}', '$secret{webhook_bad_arg}', timeout => 'soon')");
fails("$as_admin SELECT agent_tasks.create_webhook('https://example.com/hook', '{*}', '$secret{webhook_bad}')");
fails("$as_admin SELECT agent_tasks.rotate_webhook_secret('00000000-0000-7000-8000-000000000000', '$secret{webhook_rotate}')");
fails("$as_admin SELECT agent_tasks.complete_run('00000000-0000-7000-8000-000000000000', '{}', worker => '$token')");
fails(qq{$as_admin SELECT set_config('request.headers', '{"authorization": "Bearer $api_key"}', true), 1/0});
# a function of the user's passes the secret on: the CONTEXT line would quote it
$node->safe_psql('postgres', q{
	CREATE FUNCTION public.setup_agent(s text) RETURNS void LANGUAGE plpgsql AS $$
	BEGIN
		EXECUTE format('SELECT agent_tasks.set_agent_secret(%L, %L)', 'missing', s);
	END $$;
	GRANT EXECUTE ON FUNCTION public.setup_agent(text) TO sec_admin;
});
fails("$as_admin SELECT public.setup_agent('$secret{agent_nested}')");

# every statement logged
$node->safe_psql('postgres', "SET log_statement = 'all'; SET agent_tasks.account = 'sec'; "
	. "SELECT agent_tasks.set_agent_secret('llm', '$secret{logged_all}')");
$node->safe_psql('postgres', "SET log_min_duration_statement = 0; SET agent_tasks.account = 'sec'; "
	. "SELECT agent_tasks.set_agent_secret('llm', '$secret{logged_duration}')");

# a failing statement without a secret keeps its STATEMENT line
fails("SELECT 'no secret here' || 1/0");

my $log = slurp_file($node->logfile);
for my $case (sort keys %secret)
{
	my $s = $secret{$case};
	unlike($log, qr/\Q$s\E/, "the log does not hold the secret of $case");
}
like($log, qr/STATEMENT:\s+SELECT 'no secret here' \|\| 1\/0/, 'other failing statements are still logged');
like($log, qr/statement: \(hidden by agent_tasks: the statement passes a secret\)/,
	'log_statement names the statement, without its text');
like($log, qr/duration: [\d.]+ ms\s+statement: \(hidden by agent_tasks/,
	'log_min_duration_statement too');
like($log, qr/ERROR:\s+agent not found/, 'the errors themselves are logged');

$node->stop;
done_testing();
