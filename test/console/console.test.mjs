// The web console end to end: Debian's chromium driven by playwright-core,
// against the PostgREST that run.sh started (it serves the console from the
// extension).  Fixtures are made and results checked with psql as
// superuser, as an administrator would.  Prints one line per test and ends
// with "N passed, N failed".
import { createHmac, randomBytes } from 'node:crypto';
import { readFileSync, mkdirSync } from 'node:fs';
import assert from 'node:assert/strict';
import { chromium } from 'playwright-core';
import { finishTests, lit, sql, test } from '../harness.mjs';

const BASE = process.env.REST_URL;
const CONSOLE = `${BASE}/rpc/console`;
const SHOTS = process.env.CONSOLE_SCREENSHOTS || '';
const RUN = randomBytes(4).toString('hex');
const A = `console-a-${RUN}`, B = `console-b-${RUN}`;
const WAIT = 15000;

const owner = (account) => `owner@${account}.example`;
function makeKey(account, name, scopes) {
	return sql(`SELECT agent_tasks.create_api_key(${lit(name)}, ${lit(scopes)}) ->> 'token'`, account, owner(account));
}
function createTask(account, args) {
	return sql(`SELECT (agent_tasks.create_task(${args})).id`, account, owner(account));
}
function status(account, id) {
	return sql(`SELECT status FROM agent_tasks.tasks WHERE id = ${lit(id)}`, account);
}
function jwt(claims) {
	const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
	const head = b64({ alg: 'HS256', typ: 'JWT' }), body = b64(claims);
	const sig = createHmac('sha256', process.env.JWT_SECRET).update(`${head}.${body}`).digest('base64url');
	return `${head}.${body}.${sig}`;
}
async function until(what, fn, ms = WAIT) {
	const end = Date.now() + ms;
	let last;
	while (Date.now() < end) {
		last = await fn();
		if (last) return last;
		await new Promise((r) => setTimeout(r, 100));
	}
	throw new Error(`timed out waiting for ${what} (last: ${JSON.stringify(last)})`);
}

// --- fixtures -------------------------------------------------------------------------------
sql(`CREATE OR REPLACE FUNCTION public.console_test_asker(task agent_tasks.tasks, run agent_tasks.runs)
	RETURNS jsonb LANGUAGE sql AS $$
	SELECT CASE WHEN EXISTS (SELECT 1 FROM agent_tasks.messages m WHERE m.task_id = task.id AND m.role = 'user')
		THEN jsonb_build_object('status', 'completed', 'output', jsonb_build_object('page', '/about', 'answer',
			(SELECT m.body FROM agent_tasks.messages m WHERE m.task_id = task.id AND m.role = 'user' ORDER BY m.id DESC LIMIT 1)))
		ELSE jsonb_build_object('status', 'needs_clarification', 'question', 'Which colour should the header be?') END $$`);
sql(`SELECT agent_tasks.create_agent('asker', 'sql', 'public.console_test_asker'),
	agent_tasks.create_agent('ext', 'external')`, A);
const keys = {
	writer: makeKey(A, 'writer', '{task:write}'),
	reader: makeKey(A, 'reader', '{task:read}'),
	admin: makeKey(A, 'admin', '{admin}'),
	other: makeKey(B, 'other', '{task:write}'),
};

const browser = await chromium.launch({ executablePath: process.env.CHROMIUM, args: ['--no-sandbox'] });
const dialogs = [];

// A signed-in page; every alert() is recorded (there must be none), confirm() is accepted.
async function signedIn(token, { viewport = { width: 1280, height: 900 }, timezoneId, locale } = {}) {
	const context = await browser.newContext({ viewport, timezoneId, locale, acceptDownloads: true });
	const page = await context.newPage();
	page.errors = [];
	page.on('pageerror', (e) => page.errors.push(e.message));
	page.on('dialog', (d) => {
		dialogs.push(`${d.type()}: ${d.message()}`);
		return d.type() === 'confirm' ? d.accept() : d.dismiss();
	});
	await page.goto(CONSOLE);
	await page.fill('#token', token);
	await page.press('#token', 'Enter');
	await page.waitForSelector('#nav:not([hidden])', { timeout: WAIT });
	return page;
}
async function openTask(page, id) {
	await page.evaluate((h) => { location.hash = h; }, `#/task/${id}`);
	await page.waitForSelector('#task-title', { timeout: WAIT });
}
const text = (page, sel) => page.locator(sel).first().textContent({ timeout: WAIT });
async function waitText(page, sel, re) {
	let last = '';
	await until(`${sel} to match ${re}`, async () => {
		last = await page.locator(sel).first().textContent({ timeout: WAIT }).catch(() => '');
		return re.test(last) ? last : false;
	}).catch((e) => { throw new Error(`${e.message}; the text was ${JSON.stringify(last)}`); });
}
const clickButton = (page, name) => page.getByRole('button', { name, exact: true }).first().click({ timeout: WAIT });
async function shot(page, name) {
	if (!SHOTS) return;
	mkdirSync(SHOTS, { recursive: true });
	await page.waitForTimeout(300);
	await page.screenshot({ path: `${SHOTS}/${name}.png`, fullPage: true });
}

// --- serving --------------------------------------------------------------------------------
await test('the console is served to anyone with its security headers; nothing else is', async () => {
	const page = await fetch(CONSOLE, { headers: { Accept: 'text/html' } });
	assert.equal(page.status, 200);
	assert.match(page.headers.get('content-type'), /^text\/html/);
	const csp = page.headers.get('content-security-policy');
	for (const d of ["default-src 'none'", "script-src 'self'", "style-src 'self'", "connect-src 'self'",
		"frame-ancestors 'none'", "require-trusted-types-for 'script'"]) assert.ok(csp.includes(d), `${d} in ${csp}`);
	assert.ok(!/unsafe-inline|unsafe-eval|https?:|\*/.test(csp), `no inline script, no other origin: ${csp}`);
	const html = await page.text();
	assert.ok(!/<script>|<script [^>]*>[^<]/.test(html), 'no inline script in the page');
	assert.equal(page.headers.get('x-content-type-options'), 'nosniff');
	const js = await fetch(`${CONSOLE}?file=console.js`);
	assert.equal(js.status, 200);
	assert.match(js.headers.get('content-type'), /^text\/javascript/);
	const css = await fetch(`${CONSOLE}?file=console.css`);
	assert.match(css.headers.get('content-type'), /^text\/css/);
	assert.equal((await fetch(`${CONSOLE}?file=nope.js`)).status, 404);
	assert.equal((await fetch(`${BASE}/tasks`)).status, 401, 'no data without a key');
	assert.equal((await fetch(`${BASE}/rpc/whoami`)).status, 401);
	assert.equal((await fetch(CONSOLE, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{}' })).status, 401);
});

await test('a bad key is refused with the API\'s error, and the page stays on sign-in', async () => {
	const context = await browser.newContext();
	const page = await context.newPage();
	await page.goto(CONSOLE);
	await page.fill('#token', 'at_not_a_key');
	await page.click('button[type=submit]');
	await waitText(page, '.error', /HTTP 401/);
	assert.ok((await text(page, '.err-message')).length > 3);
	assert.ok(await page.locator('#nav').isHidden());
	assert.equal(await page.evaluate(() => sessionStorage.length), 0, 'a refused key is not kept');
	await context.close();
});

// --- tasks ----------------------------------------------------------------------------------
const xssTitle = '<img src=x onerror=alert(1)>';
let writerPage;
await test('sign in with a key: it is kept in sessionStorage, and a task created by SQL appears without reloading', async () => {
	writerPage = await signedIn(keys.writer);
	const page = writerPage;
	assert.match(await text(page, '#who'), new RegExp(`${A}.*task:write`));
	const stored = await page.evaluate(() => JSON.stringify(Object.fromEntries(Object.entries(sessionStorage))));
	assert.ok(stored.includes(keys.writer), 'the key is in sessionStorage');
	assert.equal(await page.evaluate(() => localStorage.length), 0, 'nothing in localStorage');
	await page.evaluate(() => { window.notReloaded = true; });
	const id = createTask(A, `'Appears by itself'`);
	await page.waitForSelector(`a[href="#/task/${id}"]`, { timeout: WAIT });
	assert.equal(await page.evaluate(() => window.notReloaded), true);
});

await test('a title made of HTML renders as text', async () => {
	const page = writerPage;
	const id = createTask(A, `${lit(xssTitle)}, prompt => '<b>bold?</b>'`);
	const link = page.locator(`a[href="#/task/${id}"]`);
	await link.waitFor({ timeout: WAIT });
	assert.equal(await link.textContent(), xssTitle);
	assert.equal(await page.locator('main img').count(), 0, 'no img element');
	await openTask(page, id);
	assert.equal(await text(page, '#task-title'), xssTitle);
	assert.equal(await text(page, '#task-prompt'), '<b>bold?</b>');
	assert.equal(await page.locator('main img, main b').count(), 0);
	await page.waitForTimeout(500);
	assert.deepEqual(dialogs, [], 'no alert ran');
});

await test('the page\'s policy stops HTML sinks and inline scripts', async () => {
	const page = writerPage;
	const got = await page.evaluate(() => {
		const out = {};
		try { document.createElement('div').innerHTML = '<img src=x>'; out.innerHTML = 'assigned'; } catch (e) { out.innerHTML = e.name; }
		try {
			const s = document.createElement('script');
			s.textContent = 'window.inlineRan = true';
			document.body.append(s);
			out.script = window.inlineRan ? 'ran' : 'blocked';
		} catch (e) { out.script = e.name; }
		return out;
	});
	assert.equal(got.innerHTML, 'TypeError');
	assert.notEqual(got.script, 'ran');
	assert.equal(await page.evaluate(() => window.inlineRan), undefined);
});

await test('counts per status, filters and pages; a refresh keeps the place', async () => {
	const page = writerPage;
	sql(`SELECT count(agent_tasks.create_task('Bulk ' || i, labels => '{bulk}')) FROM generate_series(1, 30) i`, A, owner(A));
	await page.evaluate(() => { location.hash = '#/tasks'; });
	await waitText(page, '[data-key="chip-pending"] .n', /^3\d$/);
	const pending = Number(sql(`SELECT count(*) FROM agent_tasks.tasks WHERE account = ${lit(A)} AND status = 'pending' AND NOT archived`, A));
	assert.equal(Number(await text(page, '[data-key="chip-pending"] .n')), pending);
	await page.click('[data-key="next"]');
	await waitText(page, '.pager span', /^26–/);
	await page.focus('[data-key="next"]');
	await page.waitForTimeout(2600);		// a refresh or more
	assert.match(await text(page, '.pager span'), /^26–/);
	assert.equal(await page.evaluate(() => location.hash), '#/tasks?offset=25');
	await page.fill('#f-search', 'Bulk 17');
	await waitText(page, '.pager span', /^1–1 of 1$/);
	assert.equal(await text(page, '#task-rows a'), 'Bulk 17');
	await page.fill('#f-search', '');
	await page.selectOption('#f-status', 'queued');
	await until('the queued chip pressed', async () => await page.getAttribute('[data-key="chip-queued"]', 'aria-pressed') === 'true');
	await waitText(page, '#task-rows', /No tasks\./);		// nothing of this account is queued yet
	await page.selectOption('#f-status', '');
});

let askerTask;
await test('answer a clarification an sql agent asked, and watch the task complete', async () => {
	const page = writerPage;
	askerTask = createTask(A, `'Add an About page', agent => 'asker', auto_process => true,
		context => '{"repository": "acme/site", "pages": [1,2,3,4,5,6,7,8,9,10,11,12]}'`);
	await openTask(page, askerTask);
	await waitText(page, '#question-text', /Which colour should the header be\?/);
	await waitText(page, '#task-head', /needs clarification/);
	await shot(page, 'task');
	await page.fill('#message', 'Blue, please');
	await clickButton(page, 'Answer');
	await waitText(page, '#task-head', /completed/);
	await waitText(page, '#task-output', /"answer": "Blue, please"/);
	assert.match(await text(page, '#task-conversation'), /Blue, please/);
	assert.equal(await page.locator('#task-question section').count(), 0, 'no open question any more');
	assert.equal(status(A, askerTask), 'completed');
	assert.match(await text(page, '#timeline'), /needs_clarification/);
});

await test('stop, resume, cancel, retry, like, dislike, archive', async () => {
	const page = writerPage;
	const id = createTask(A, `'Drive me', agent => 'ext', auto_process => true`);
	await openTask(page, id);
	await waitText(page, '#task-head', /queued/);
	await clickButton(page, 'Stop');
	await waitText(page, '#task-head', /on hold/);
	assert.equal(status(A, id), 'on_hold');
	await clickButton(page, 'Resume');
	await waitText(page, '#task-head', /queued/);
	await clickButton(page, 'Cancel');
	await waitText(page, '#task-head', /cancelled/);
	assert.equal(status(A, id), 'cancelled');
	await clickButton(page, 'Retry');
	await waitText(page, '#task-head', /queued/);
	assert.equal(sql(`SELECT count(*) FROM agent_tasks.runs WHERE task_id = ${lit(id)}`, A), '2');
	await clickButton(page, 'Cancel');
	await waitText(page, '#task-head', /cancelled/);
	await clickButton(page, 'Like');
	await waitText(page, '#task-head', /feedback: like/);
	assert.equal(await page.getAttribute('[data-key="Like"]', 'aria-pressed'), 'true');
	await clickButton(page, 'Dislike');
	await waitText(page, '#task-head', /feedback: dislike/);
	assert.equal(sql(`SELECT feedback FROM agent_tasks.tasks WHERE id = ${lit(id)}`, A), 'dislike');
	await clickButton(page, 'Archive');
	await waitText(page, '#task-head', /archived/);
	assert.equal(sql(`SELECT archived FROM agent_tasks.tasks WHERE id = ${lit(id)}`, A), 't');
	await clickButton(page, 'Follow up');		// a follow-up run after a finished task
	await waitText(page, '#task-head', /queued/);
	assert.ok(dialogs.every((d) => d.startsWith('confirm')), dialogs.join(', '));
});

await test('a refused action shows the API\'s message, detail and hint', async () => {
	const page = writerPage;
	const id = createTask(A, `'People'`);
	await openTask(page, id);
	await page.fill('#assignees', 'ann@example.com, not-an-email');
	await clickButton(page, 'Set assignees');
	await waitText(page, '#action-errors .err-message', /invalid e-mail address/);
	assert.match(await text(page, '#action-errors .err-detail'), /'not-an-email' is not an e-mail address/);
	assert.match(await text(page, '#action-errors .err-hint'), /Use an address like/);
	assert.match(await text(page, '#action-errors .error'), /HTTP 400, PT400/);
	await page.fill('#assignees', 'ann@example.com, bob@example.com');
	await clickButton(page, 'Set assignees');
	await waitText(page, '#assignee-list', /ann@example.com, bob@example.com/);
	assert.equal(await page.locator('#action-errors .error').count(), 0, 'the error is gone after a success');
	await page.fill('#followers', 'cy@example.com');
	await clickButton(page, 'Add followers');
	await waitText(page, '#follower-list', /cy@example.com/);
	// a blocked task cannot be processed: PT409 from the state of the database
	const blocker = createTask(A, `'Blocker'`);
	const blocked = createTask(A, `'Blocked', depends_on => ARRAY[${lit(blocker)}::uuid]`);
	await openTask(page, blocked);
	await clickButton(page, 'Process');
	await waitText(page, '#action-errors .error', /HTTP 409/);
	assert.ok((await text(page, '#action-errors .err-hint')).length > 5);
});

await test('live progress: report_progress shows on the task page as it happens', async () => {
	const page = writerPage;
	const id = createTask(A, `'Long import', agent => 'ext', auto_process => true`);
	await openTask(page, id);
	const run = sql(`SELECT run_id FROM agent_tasks.claim_runs('console-worker', '{ext}', 100) WHERE task_id = ${lit(id)}`, A);
	assert.match(run, /^[0-9a-f-]{36}$/);
	await waitText(page, '#live-phase', /started/);
	sql(`SELECT agent_tasks.report_progress(${lit(run)}, 'import', 'rows 400 of 1000', '{"percent": 40}', 'console-worker')`, A);
	await waitText(page, '#live-phase', /^import$/);
	await waitText(page, '#live-percent', /^40 %$/);
	assert.equal(await text(page, '#live-message'), 'rows 400 of 1000');
	assert.equal(await page.getAttribute('#task-live progress', 'value'), '40');
	sql(`SELECT agent_tasks.report_progress(${lit(run)}, 'import', 'rows 800 of 1000', '{"percent": 80}', 'console-worker')`, A);
	await waitText(page, '#live-percent', /^80 %$/);
	await shot(page, 'task-progress');
	sql(`SELECT agent_tasks.complete_run(${lit(run)}, '{"rows": 1000}', worker => 'console-worker')`, A);
	await waitText(page, '#task-head', /completed/);
	assert.equal(await page.locator('#live-phase').count(), 0, 'the live panel goes when the run ends');
});

await test('who is watching: the page touches presence while it is open', async () => {
	const page = writerPage;
	await openTask(page, askerTask);
	await waitText(page, '#watchers', new RegExp(owner(A).replace('.', '\\.')));
	assert.equal(sql(`SELECT count(*) FROM agent_tasks.presence WHERE task_id = ${lit(askerTask)}`, A), '1');
});

await test('long JSON is folded and stays open across refreshes; dates in the viewer\'s time zone', async () => {
	const page = await signedIn(keys.writer, { timezoneId: 'Asia/Tokyo', locale: 'en-US' });
	await openTask(page, askerTask);
	const fold = page.locator('#task-details details');
	await fold.waitFor({ timeout: WAIT });
	assert.equal(await fold.getAttribute('open'), null, 'folded');
	assert.match(await fold.locator('summary').textContent(), /object, \d+ lines/);
	await fold.locator('summary').click();
	await page.waitForTimeout(2600);
	assert.notEqual(await page.locator('#task-details details').getAttribute('open'), null, 'still open after a refresh');
	const t = page.locator('#task-details time').first();
	const iso = await t.getAttribute('datetime');
	assert.equal(await t.textContent(), new Date(iso).toLocaleString('en-US', { timeZone: 'Asia/Tokyo' }));
	await page.context().close();
});

await test('an artifact downloads with the key', async () => {
	const page = writerPage;
	sql(`SELECT agent_tasks.attach_artifact(${lit(askerTask)}, 'notes.txt', ${lit(Buffer.from('hello console\n').toString('base64'))}, content_type => 'text/plain')`, A, owner(A));
	await openTask(page, askerTask);
	const button = page.getByRole('button', { name: 'notes.txt' });
	await button.waitFor({ timeout: WAIT });
	const [download] = await Promise.all([page.waitForEvent('download', { timeout: WAIT }), button.click()]);
	assert.equal(download.suggestedFilename(), 'notes.txt');
	assert.equal(readFileSync(await download.path(), 'utf8'), 'hello console\n');
});

await test('new task, command mode with items', async () => {
	const page = writerPage;
	await page.evaluate(() => { location.hash = '#/new'; });
	await page.check('#mode-command');
	await page.fill('#n-title', 'Translate the site');
	await page.fill('#n-command', 'translate');
	await page.fill('#n-items', 'Home\nPricing\n{"title": "Blog", "context": {"lang": "fr"}}');
	await page.uncheck('#n-auto');
	await page.click('#n-submit');
	await page.waitForSelector('#children li', { timeout: WAIT });
	assert.equal(await text(page, '#task-title'), 'Translate the site');
	assert.equal(await page.locator('#children li').count(), 3);
	const id = await page.evaluate(() => location.hash.split('/')[2]);
	assert.equal(sql(`SELECT string_agg(title || ':' || coalesce(context ->> 'lang', '-'), ',' ORDER BY id) FROM agent_tasks.tasks WHERE parent_id = ${lit(id)}`, A),
		'Home:-,Pricing:-,Blog:fr');
	assert.equal(sql(`SELECT command FROM agent_tasks.tasks WHERE id = ${lit(id)}`, A), 'translate');
});

await test('new task, prompt mode; a refused creation shows the API\'s error', async () => {
	const page = writerPage;
	await page.evaluate(() => { location.hash = '#/new'; });
	await page.fill('#n-title', 'Refused');
	await page.fill('#n-context', '["not an object"]');
	await page.click('#n-submit');
	await waitText(page, '.error', /context/);
	assert.match(await text(page, '.error'), /HTTP 400/);
	await page.fill('#n-context', '{"repository": "acme/site"}');
	await page.fill('#n-title', 'Write the changelog');
	await page.fill('#n-prompt', 'For 0.2.0');
	await page.selectOption('#n-agent', 'ext');
	await page.click('#n-submit');
	await page.waitForSelector('#task-title', { timeout: WAIT });
	assert.equal(await text(page, '#task-title'), 'Write the changelog');
	await waitText(page, '#task-head', /queued/);
});

// --- keys and accounts ----------------------------------------------------------------------
await test('a read-only key sees the tasks and no action that would fail', async () => {
	const page = await signedIn(keys.reader);
	await page.waitForSelector(`a[href="#/task/${askerTask}"]`, { timeout: WAIT });
	assert.ok(await page.locator('#nav-new').isHidden());
	assert.ok(await page.locator('#nav-admin').isHidden());
	await openTask(page, askerTask);
	await waitText(page, '#task-output', /Blue, please/);
	assert.equal(await page.locator('main button').count(), 1, 'only the artifact download');
	assert.equal(await page.locator('#message, #assignees, #followers').count(), 0);
	await page.context().close();
});

await test('a JWT signs in too', async () => {
	const page = await signedIn(jwt({ role: 'agent_tasks_reader', account: A, email: 'jay@example.com' }));
	assert.match(await text(page, '#who'), new RegExp(`${A}.*jay@example.com.*task:read`));
	await page.waitForSelector(`a[href="#/task/${askerTask}"]`, { timeout: WAIT });
	await page.context().close();
});

await test('another account\'s key sees nothing of the first', async () => {
	const page = await signedIn(keys.other);
	await waitText(page, '#task-rows', /No tasks\./);
	assert.equal(await text(page, '[data-key="chip-"] .n'), '0');
	await page.evaluate((h) => { location.hash = h; }, `#/task/${askerTask}`);
	await waitText(page, 'main h1', /Task not found/);
	await page.evaluate(() => { location.hash = '#/queues'; });
	await waitText(page, '#queue-stats', /No agents\./);
	await page.context().close();
});

await test('queues: stats per agent and the per-minute chart; workers only for admins', async () => {
	const page = writerPage;
	await page.evaluate(() => { location.hash = '#/queues'; });
	await waitText(page, '#queue-stats', /asker/);
	const chart = page.locator('.agent-chart[data-agent="asker"]');
	await chart.waitFor({ timeout: WAIT });
	assert.ok(await chart.locator('rect.c').count() >= 1, 'a completed minute');
	assert.match(await chart.locator('svg').getAttribute('aria-label'), /asker: [1-9]\d* completed/);
	assert.equal(await page.locator('#workers').count(), 0);
	const admin = await signedIn(keys.admin);
	await admin.evaluate(() => { location.hash = '#/queues'; });
	await waitText(admin, '#workers', /executor/);
	await shot(admin, 'queues');
	await admin.context().close();
});

await test('admin pages refused without the admin scope', async () => {
	const page = writerPage;
	assert.ok(await page.locator('#nav-admin').isHidden());
	await page.evaluate(() => { location.hash = '#/admin'; });
	await waitText(page, '#admin-errors .error', /HTTP 403/);
	assert.ok((await text(page, '#admin-errors .err-message')).length > 5);
	assert.equal(await page.locator('#key-table').count(), 0);
});

await test('admin pages: agents, webhook deliveries and redeliver, API keys created and revoked', async () => {
	sql(`SELECT agent_tasks.create_webhook('https://hooks.console-test.invalid/in', '{task.created}')`, A, owner(A));
	createTask(A, `'Hooked'`);
	const page = await signedIn(keys.admin);
	await page.evaluate(() => { location.hash = '#/admin'; });
	await waitText(page, '#admin-agents', /asker/);
	await waitText(page, '#admin-webhooks', /hooks\.console-test\.invalid/);
	await page.click('[data-key^="deliveries-"]');
	await waitText(page, '#admin-webhooks table', /task\.created/);
	await page.locator('[data-key^="redeliver-"]').first().click();
	await until('a redelivery or its refusal', async () =>
		(await page.locator('#admin-webhooks .error').count()) > 0
		|| /Redeliver: done/.test(await page.locator('#toast').textContent()));
	await page.fill('#k-name', 'made-in-console');
	await page.fill('#k-email', `keys@${A}.example`);
	const form = 'form[aria-label="Create an API key"]';
	await page.check(`${form} input[value="task:read"]`);
	await page.uncheck(`${form} input[value="task:write"]`);
	await page.click(`${form} button[type=submit]`);
	const token = (await page.locator('#token-value').textContent({ timeout: WAIT })).trim();
	assert.match(token, /^[\w-]+\.[\w-]+\.[\w-]+$/, 'with PostgREST\'s secret given to the extension, a key is a JWT');
	const who = await (await fetch(`${BASE}/rpc/whoami`, { headers: { 'X-Api-Key': token } })).json();
	assert.deepEqual(who.scopes, ['task:read']);
	await waitText(page, '#key-table', /made-in-console/);
	assert.equal(await text(page, 'tr[data-key-name="made-in-console"] td[data-label="Acts as"]'), `keys@${A}.example`);
	await page.locator('tr[data-key-name="made-in-console"] button').click();
	await waitText(page, 'tr[data-key-name="made-in-console"]', /revoked/);
	assert.equal((await fetch(`${BASE}/rpc/whoami`, { headers: { 'X-Api-Key': token } })).status, 401);
	await page.context().close();
});

await test('a key revoked while in use leads back to sign-in, saying why', async () => {
	const token = makeKey(A, 'short-lived', '{task:read}');
	const page = await signedIn(token);
	await page.waitForSelector('#task-rows a', { timeout: WAIT });
	sql(`SELECT agent_tasks.revoke_api_key(id) FROM agent_tasks.api_keys WHERE account = ${lit(A)} AND name = 'short-lived'`, A);
	await page.waitForSelector('#token', { timeout: WAIT });
	assert.match(await text(page, '.error'), /HTTP 401/);
	assert.ok(await page.locator('#nav').isHidden());
	assert.equal(await page.evaluate(() => sessionStorage.getItem('agent_tasks.console.auth')), null);
	await page.context().close();
});

// --- keyboard and small screens -------------------------------------------------------------
await test('keyboard only: sign in, open a task, act', async () => {
	const context = await browser.newContext();
	const page = await context.newPage();
	await page.goto(CONSOLE);
	await page.waitForSelector('#token');
	assert.equal(await page.evaluate(() => document.activeElement.id), 'token', 'the key field has the focus');
	await page.keyboard.type(keys.writer);
	await page.keyboard.press('Enter');
	await page.waitForSelector('#nav:not([hidden])', { timeout: WAIT });
	const link = page.locator(`a[href="#/task/${askerTask}"]`);
	await link.waitFor({ timeout: WAIT });
	await link.focus();
	await page.keyboard.press('Enter');
	await page.waitForSelector('#task-title', { timeout: WAIT });
	const retry = page.locator('[data-key="Retry"]');
	await retry.focus();
	await page.keyboard.press('Enter');
	await waitText(page, '#task-head', /queued|in progress|needs clarification|completed/);
	await until('a retry run', () => sql(`SELECT count(*) FROM agent_tasks.runs WHERE task_id = ${lit(askerTask)}`, A) === '2');
	await context.close();
});

await test('phone width: nothing wider than the screen', async () => {
	const page = await signedIn(keys.writer, { viewport: { width: 390, height: 844 } });
	await page.waitForSelector('#task-rows a', { timeout: WAIT });
	// true, or the elements that stick out
	const fits = () => page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth + 1
		|| [...document.querySelectorAll('body *')].filter((e) => e.getBoundingClientRect().right > window.innerWidth + 1)
			.slice(0, 5).map((e) => `${e.tagName}#${e.id}.${e.className}`).join(' '));
	assert.equal(await fits(), true, 'task list');
	await openTask(page, askerTask);
	await page.waitForSelector('#task-runs table', { timeout: WAIT });
	assert.equal(await fits(), true, 'task page');
	await page.evaluate(() => { location.hash = '#/queues'; });
	await page.waitForSelector('.agent-chart', { timeout: WAIT });
	assert.equal(await fits(), true, 'queues');
	await page.context().close();
});

await test('no script errors on any page', async () => {
	assert.deepEqual(writerPage.errors, []);
	if (SHOTS) {
		await writerPage.evaluate(() => { location.hash = '#/tasks'; });
		await writerPage.waitForSelector('#task-rows a', { timeout: WAIT });
		await shot(writerPage, 'tasks');
	}
});

await browser.close();
finishTests();
