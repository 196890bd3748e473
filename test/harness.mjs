// What the node test files (test/rest, test/console) share: a test runner
// that prints "ok N - name" or "not ok N - name" with the error, and ends
// with "N passed, N failed" (which each suite's run.sh adds up), also when
// an error escapes every test; and psql as the suite's superuser.
import { execFileSync } from 'node:child_process';

let passed = 0, failed = 0;

export async function test(name, fn) {
	try {
		await fn();
		passed++;
		console.log(`ok ${passed + failed} - ${name}`);
	} catch (e) {
		failed++;
		console.log(`not ok ${passed + failed} - ${name}`);
		console.log(String(e && e.stack || e).split('\n').slice(0, 12).map((l) => `#   ${l}`).join('\n'));
	}
}

process.on('uncaughtException', (e) => {
	console.log(`# ${String(e && e.stack || e).split('\n').slice(0, 6).join('\n# ')}`);
	console.log(`${passed} passed, ${failed + 1} failed`);
	process.exit(1);
});

// The summary line, and an exit status that says whether all passed.
export function finishTests() {
	console.log(`${passed} passed, ${failed} failed`);
	process.exit(failed ? 1 : 0);
}

// A SQL string literal.
export const lit = (s) => `'${String(s).replace(/'/g, "''")}'`;

// One statement through psql; account and email, when given, are the
// session's agent_tasks.account and agent_tasks.email.
export function sql(query, account, email) {
	const env = { ...process.env };
	const opts = [];
	if (account) opts.push(`-c agent_tasks.account=${account}`);
	if (email) opts.push(`-c agent_tasks.email=${email}`);
	if (opts.length) env.PGOPTIONS = opts.join(' ');
	return execFileSync('psql', ['-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1', '-c', query],
		{ encoding: 'utf8', env }).trim();
}
