// REST resources with the usual verbs, seed-shaped requests and paging
// (issue 11) against a real PostgREST (started by run.sh, like
// rest.test.mjs).  Client: node's fetch; the database is prepared and
// checked with psql as superuser.  Ends with "N passed, N failed".
import { randomBytes } from 'node:crypto';
import assert from 'node:assert/strict';
import { finishTests, lit, sql, test } from '../harness.mjs';

const BASE = process.env.REST_URL;
const RUN = randomBytes(4).toString('hex');
const A = `verbs-${RUN}`, B = `verbs-b-${RUN}`;


async function req(method, path, { key, body, headers = {} } = {}) {
	const h = { ...headers };
	if (key) h['X-Api-Key'] = key;
	if (body !== undefined) h['Content-Type'] = 'application/json';
	const res = await fetch(BASE + path, { method, headers: h, body: body === undefined ? undefined : JSON.stringify(body) });
	const text = await res.text();
	let json;
	try { json = JSON.parse(text); } catch { json = undefined; }
	return { status: res.status, headers: res.headers, text, json };
}
const rpc = (name, body, opts = {}) => req('POST', `/rpc/${name}`, { ...opts, body: body ?? {} });
const REPR = { Prefer: 'return=representation' };

function expectError(r, status, code, what) {
	assert.equal(r.status, status, `${what}: HTTP ${r.status} ${r.text}`);
	if (code) assert.equal(r.json?.code, code, `${what}: ${r.text}`);
	assert.ok(typeof r.json?.message === 'string', `${what}: PostgREST error body ${r.text}`);
}

function makeKey(account, name, scopes) {
	return sql(`SET agent_tasks.email = 'owner@${account}.example';
		SELECT agent_tasks.create_api_key(${lit(name)}, ${lit(scopes)}) ->> 'token'`, account);
}
const keys = {
	admin: makeKey(A, 'admin', '{admin}'),
	write: makeKey(A, 'write', '{task:write}'),
	read: makeKey(A, 'read', '{task:read}'),
	worker: makeKey(A, 'worker', '{worker}'),
	b: makeKey(B, 'b write', '{task:write}'),
};
const AGENT = `assistant-${RUN}`;
sql(`SELECT agent_tasks.create_agent(${lit(AGENT)}, 'external')`, A);
const w = { key: keys.write };
const getTask = async (id, select = '*') => {
	const r = await req('GET', `/tasks?id=eq.${id}&select=${select}`, { key: keys.read });
	assert.equal(r.status, 200, r.text);
	assert.equal(r.json.length, 1, r.text);
	return r.json[0];
};
// a worker finishes the task's run (in_progress, then completed)
async function finish(id, output = { done: true }) {
	for (const status of ['in_progress', 'completed']) {
		const r = await rpc('set_task_status', { task: id, status, ...(status === 'completed' ? { output } : {}) }, { key: keys.worker });
		assert.equal(r.status, 200, r.text);
	}
}

// --- tasks: POST, PATCH, DELETE ------------------------------------------------------
let made;
await test('POST /tasks creates through create_task: 201 with the task, or with its Location', async () => {
	const r = await req('POST', '/tasks', { ...w, headers: REPR, body: { title: 'Made with POST', prompt: 'Through the view', labels: ['rest'] } });
	assert.equal(r.status, 201, r.text);
	assert.equal(r.json.length, 1);
	made = r.json[0];
	assert.equal(made.title, 'Made with POST');
	assert.equal(made.status, 'pending');
	assert.equal(made.owner, `owner@${A}.example`);
	assert.equal(made.account, A);
	assert.deepEqual(made.labels, ['rest']);
	assert.equal(made.title_derived, false);
	// PostgREST 12 sends Location (the view's key, from the table's) only
	// with return=headers-only
	const loc = await req('POST', '/tasks', { ...w, headers: { Prefer: 'return=headers-only' }, body: { title: 'Where is it' } });
	assert.equal(loc.status, 201, loc.text);
	const where = loc.headers.get('location');
	assert.match(where, new RegExp(`^/tasks\\?id=eq\\.[0-9a-f-]{36}&account=eq\\.${A}$`));
	const found = await req('GET', where + '&select=title', { key: keys.read });
	assert.deepEqual(found.json, [{ title: 'Where is it' }]);
	const bare = await req('POST', '/tasks', { ...w, body: { title: 'No representation' } });
	assert.equal(bare.status, 201, bare.text);
	assert.equal(bare.text, '');
	assert.equal(sql(`SELECT count(*) FROM agent_tasks_internal.tasks WHERE account = ${lit(A)} AND title = 'No representation'`), '1');
	const act = await req('GET', `/activities?task_id=eq.${made.id}&select=event`, { key: keys.read });
	assert.deepEqual(act.json.map((a) => a.event), ['created']);
});
await test('POST /tasks: a field that does not exist is 400 naming it; a server-set one too; a bad value is our 400', async () => {
	const unknown = await req('POST', '/tasks', { ...w, body: { title: 'x', bogus: 1 } });
	expectError(unknown, 400, 'PGRST204', 'unknown column');
	assert.match(unknown.json.message, /'bogus'/);
	const server = await req('POST', '/tasks', { ...w, body: { title: 'x', status: 'completed', id: made.id } });
	expectError(server, 400, 'PT400', 'server-set columns');
	assert.equal(server.json.message, 'columns set by the server: id, status');
	expectError(await req('POST', '/tasks', { ...w, body: { title: 'x', priority: 5000 } }), 400, 'PT400', 'priority out of range');
	expectError(await req('POST', '/tasks', { ...w, body: {} }), 400, 'PT400', 'neither title nor prompt');
	expectError(await req('POST', '/tasks', { key: keys.read, body: { title: 'reader' } }), 403, null, 'a read key posting');
	assert.equal(sql(`SELECT count(*) FROM agent_tasks_internal.tasks WHERE account = ${lit(A)} AND title IN ('x', 'reader')`), '0');
});
await test('PATCH /tasks?id=eq.X changes the mutable fields (204, or the task with return=representation)', async () => {
	const p = await req('PATCH', `/tasks?id=eq.${made.id}`, { ...w, body: { priority: 9, labels: ['rest', 'patched'], description: 'Changed through PATCH' } });
	assert.equal(p.status, 204, p.text);
	let t = await getTask(made.id);
	assert.equal(t.priority, 9);
	assert.deepEqual(t.labels, ['rest', 'patched']);
	assert.equal(t.prompt, 'Changed through PATCH');
	const r = await req('PATCH', `/tasks?id=eq.${made.id}`, { ...w, headers: REPR, body: { archived: true, feedback: 'like', assignees: ['ann@a.example'], followers: ['fay@a.example'] } });
	assert.equal(r.status, 200, r.text);
	t = r.json[0];
	assert.equal(t.archived, true);
	assert.equal(t.feedback, 'like');
	assert.deepEqual(t.assignees, ['ann@a.example']);
	assert.deepEqual(t.followers, ['fay@a.example']);
	const events = (await req('GET', `/activities?task_id=eq.${made.id}&select=event&order=id`, { key: keys.read })).json.map((a) => a.event);
	assert.deepEqual(events, ['created', 'updated', 'assignee_added', 'follower_added', 'feedback', 'archived']);
});
await test('PATCH refuses what cannot change (400 naming the field) and unknown columns (400)', async () => {
	const imm = await req('PATCH', `/tasks?id=eq.${made.id}`, { ...w, body: { created_at: '2020-01-01T00:00:00Z' } });
	expectError(imm, 400, 'PT400', 'immutable field');
	assert.equal(imm.json.message, 'field created_at cannot be changed');
	assert.match(imm.json.hint, /Mutable fields: .*priority/);
	const mixed = await req('PATCH', `/tasks?id=eq.${made.id}`, { ...w, body: { priority: 1, output: { x: 1 } } });
	expectError(mixed, 400, 'PT400', 'immutable field with a mutable one');
	assert.equal((await getTask(made.id)).priority, 9, 'nothing changed');
	expectError(await req('PATCH', `/tasks?id=eq.${made.id}`, { ...w, body: { nope: 1 } }), 400, 'PGRST204', 'unknown column');
	const st = await req('PATCH', `/tasks?id=eq.${made.id}`, { ...w, body: { status: 'completed' } });
	expectError(st, 403, 'PT403', 'a writer setting a status');
	assert.equal(st.json.message, 'only workers set a status');
	const other = await req('PATCH', `/tasks?id=eq.${made.id}`, { key: keys.b, headers: REPR, body: { priority: 1 } });
	assert.equal(other.status, 200, other.text);
	assert.deepEqual(other.json, [], 'another account changes nothing');
});
await test('DELETE /tasks?id=eq.X deletes through delete_task (204), children with their parent', async () => {
	const parent = await rpc('create_task', { command: 'split', items: ['a', 'b'] }, w);
	assert.equal(parent.status, 200, parent.text);
	const d = await req('DELETE', `/tasks?or=(id.eq.${parent.json.id},parent_id.eq.${parent.json.id})`, w);
	assert.equal(d.status, 204, d.text);
	assert.equal(sql(`SELECT count(*) FROM agent_tasks_internal.tasks WHERE account = ${lit(A)} AND (id = ${lit(parent.json.id)} OR parent_id = ${lit(parent.json.id)})`), '0');
	expectError(await req('DELETE', `/tasks?id=eq.${made.id}`, { key: keys.read }), 403, null, 'a read key deleting');
	const gone = await req('DELETE', `/tasks?id=eq.${made.id}`, { ...w, headers: REPR });
	assert.equal(gone.status, 200, gone.text);
	assert.equal(gone.json[0].id, made.id);
	assert.deepEqual((await req('GET', `/tasks?id=eq.${made.id}`, { key: keys.read })).json, []);
});

// --- messages, assignees, followers, webhooks ------------------------------------------
await test('POST /messages answers a clarification question and re-queues the run', async () => {
	const t = (await rpc('create_task', { title: 'Which colour?', agent: AGENT, auto_process: true }, w)).json;
	for (const status of ['in_progress', 'needs_clarification'])
		assert.equal((await rpc('set_task_status', { task: t.id, status }, { key: keys.worker })).status, 200);
	const m = await req('POST', '/messages', { ...w, headers: REPR, body: { task_id: t.id, body: 'Blue' } });
	assert.equal(m.status, 201, m.text);
	assert.equal(m.json[0].role, 'user');
	assert.equal(m.json[0].author, `owner@${A}.example`);
	assert.equal((await getTask(t.id)).status, 'queued');
	expectError(await req('POST', '/messages', { ...w, body: { task_id: t.id, body: 'x', author: 'mallory' } }), 400, 'PT400', 'author set by the client');
	expectError(await req('POST', '/messages', { ...w, body: { task_id: t.id, body: 'x', role: 'agent' } }), 403, 'PT403', 'a writer posing as the agent');
	expectError(await req('PATCH', `/messages?task_id=eq.${t.id}`, { ...w, body: { body: 'rewritten' } }), 403, 'PT403', 'changing a message');
	expectError(await req('DELETE', `/messages?task_id=eq.${t.id}`, w), 403, 'PT403', 'deleting a message');
	assert.equal((await req('GET', `/messages?task_id=eq.${t.id}&select=body`, { key: keys.read })).json[0].body, 'Blue');
});
await test('POST and DELETE /task_assignees and /task_followers', async () => {
	const t = (await rpc('create_task', { title: 'People' }, w)).json;
	assert.equal((await req('POST', '/task_assignees', { ...w, body: { task_id: t.id, email: 'Ann@A.example' } })).status, 201);
	assert.equal((await req('POST', '/task_assignees', { ...w, body: { task_id: t.id, email: 'bo@a.example' } })).status, 201);
	assert.equal((await req('POST', '/task_followers', { ...w, body: { task_id: t.id, email: 'cy@a.example' } })).status, 201);
	const list = await req('GET', `/task_assignees?task_id=eq.${t.id}&select=email&order=email`, { key: keys.read });
	assert.deepEqual(list.json.map((x) => x.email), ['ann@a.example', 'bo@a.example']);
	assert.equal((await req('DELETE', `/task_assignees?task_id=eq.${t.id}&email=eq.ann@a.example`, w)).status, 204);
	assert.equal((await req('DELETE', `/task_followers?task_id=eq.${t.id}`, w)).status, 204);
	const after = await getTask(t.id, 'assignees,followers');
	assert.deepEqual(after, { assignees: ['bo@a.example'], followers: [] });
	expectError(await req('POST', '/task_assignees', { ...w, body: { task_id: t.id, email: 'not an address' } }), 400, 'PT400', 'bad address');
	expectError(await req('POST', '/task_assignees', { key: keys.read, body: { task_id: t.id, email: 'd@a.example' } }), 403, null, 'a read key assigning');
});
await test('webhooks: events default to all; PATCH and DELETE /webhook_endpoints for admins only', async () => {
	const c = await rpc('create_webhook', { url: `https://hooks.example.com/${RUN}` }, { key: keys.admin });
	assert.equal(c.status, 200, c.text);
	assert.deepEqual(c.json.events, ['*']);
	const id = c.json.id;
	const p = await req('PATCH', `/webhook_endpoints?id=eq.${id}`, { key: keys.admin, headers: REPR, body: { events: ['task.completed'], description: 'CI', enabled: false } });
	assert.equal(p.status, 200, p.text);
	assert.deepEqual(p.json[0].events, ['task.completed']);
	assert.equal(p.json[0].description, 'CI');
	assert.equal(p.json[0].enabled, false);
	const bad = await req('PATCH', `/webhook_endpoints?id=eq.${id}`, { key: keys.admin, body: { created_by: 'x' } });
	expectError(bad, 400, 'PT400', 'immutable webhook field');
	assert.match(bad.json.message, /created_by cannot be changed/);
	expectError(await req('DELETE', `/webhook_endpoints?id=eq.${id}`, w), 403, null, 'a writer deleting a webhook');
	const post = await req('POST', '/webhook_endpoints', { key: keys.admin, body: { url: 'https://hooks.example.com/y' } });
	expectError(post, 403, 'PT403', 'POST (the secret is shown by create_webhook only)');
	assert.match(post.json.hint, /rpc\/create_webhook/);
	assert.equal((await req('DELETE', `/webhook_endpoints?id=eq.${id}`, { key: keys.admin })).status, 204);
	assert.deepEqual((await req('GET', `/webhook_endpoints?id=eq.${id}`, { key: keys.admin })).json, []);
});

// --- the seeds' requests ---------------------------------------------------------------
await test('Flint: prompt-only create with a callback URL, then its status under Flint\'s names', async () => {
	const c = await rpc('create_task', { prompt: 'Add a new About page with a team section', callback_url: 'https://your-server.example.com/webhooks/flint', context: { siteId: '550e8400-e29b-41d4-a716-446655440000' }, auto_process: true }, w);
	assert.equal(c.status, 200, c.text);
	assert.equal(c.json.title, 'Add a new About page with a team section');
	assert.equal(c.json.title_derived, true);
	const sel = 'taskId:id,status,phase:runs(phase),output,errorMessage:error->>message';
	assert.deepEqual(await getTask(c.json.id, 'taskId:id,status,errorMessage:error->>message'), { taskId: c.json.id, status: 'queued', errorMessage: null });
	await finish(c.json.id, { pagesCreated: [{ slug: '/about' }], pagesModified: [], pagesDeleted: [] });
	const done = await getTask(c.json.id, sel);
	assert.equal(done.status, 'completed');
	assert.deepEqual(done.output.pagesCreated, [{ slug: '/about' }]);
	const failedOne = (await rpc('create_task', { prompt: 'Break', auto_process: true }, w)).json.id;
	await rpc('set_task_status', { task: failedOne, status: 'in_progress' }, { key: keys.worker });
	await rpc('set_task_status', { task: failedOne, status: 'failed', error: { message: 'Failed to generate page content' } }, { key: keys.worker });
	assert.deepEqual(await getTask(failedOne, 'status,errorMessage:error->>message'), { status: 'failed', errorMessage: 'Failed to generate page content' });
	expectError(await rpc('create_task', { prompt: 'x', callback_url: 'http://10.0.0.1/hook' }, w), 400, 'PT400', 'Invalid callback URL');
});
await test('Flint: generate_pages with command items (string context, externalId)', async () => {
	const c = await rpc('create_task', {
		command: 'generate_pages', context: { siteId: 's-1', templatePageSlug: '/case-studies/template' },
		items: [
			{ targetPageSlug: '/case-studies/acme-corp', context: 'Acme Corp increased conversions by 40% using our platform', externalId: 'cs-001' },
			{ targetPageSlug: '/case-studies/globex', context: 'Globex reduced time-to-market by 60% with our solution' },
		],
		callback_url: 'https://your-server.example.com/webhooks/flint', auto_process: true,
	}, w);
	assert.equal(c.status, 200, c.text);
	assert.equal(c.json.title, 'generate_pages');
	const kids = await req('GET', `/tasks?parent_id=eq.${c.json.id}&select=externalId:external_id,slug:item->>targetPageSlug,text:context->>text,site:context->>siteId&order=id`, { key: keys.read });
	assert.deepEqual(kids.json, [
		{ externalId: 'cs-001', slug: '/case-studies/acme-corp', text: 'Acme Corp increased conversions by 40% using our platform', site: 's-1' },
		{ externalId: null, slug: '/case-studies/globex', text: 'Globex reduced time-to-market by 60% with our solution', site: 's-1' },
	]);
});
await test('PostHog: POST /tasks with title and description (201), read back with title_manually_set', async () => {
	const r = await req('POST', '/tasks', { ...w, headers: { Prefer: 'return=representation' }, body: { title: 'Fix flaky test', description: 'The login test fails one run in ten' } });
	assert.equal(r.status, 201, r.text);
	assert.equal(r.json[0].prompt, 'The login test fails one run in ten');
	assert.equal(r.json[0].description, 'The login test fails one run in ten');
	const t = await getTask(r.json[0].id, 'id,title,description,derived:title_derived,origin_product:origin,created_at');
	assert.equal(t.description, 'The login test fails one run in ten');
	assert.equal(t.derived, false);
	const prompt = await req('POST', '/tasks', { ...w, headers: REPR, body: { description: 'Only a description here' } });
	assert.equal(prompt.status, 201, prompt.text);
	assert.equal(prompt.json[0].title, 'Only a description here');
	assert.equal(prompt.json[0].title_derived, true);
	expectError(await req('POST', '/tasks', { ...w, body: { title: 'x', prompt: 'a', description: 'b' } }), 400, 'PT400', 'prompt and description differ');
	const list = await req('GET', '/tasks?select=id&title_derived=is.false&limit=2&offset=0', { key: keys.read, headers: { Prefer: 'count=exact' } });
	assert.ok([200, 206].includes(list.status), list.text);
	assert.match(list.headers.get('content-range'), /^0-1\/\d+$/);
});
await test('Mintlify: prompt-only create, then a follow-up message on the completed job starts a run', async () => {
	const c = await rpc('create_task', { prompt: 'Document the new webhooks endpoint', auto_process: true }, w);
	assert.equal(c.status, 200, c.text);
	const id = c.json.id;
	assert.deepEqual(Object.keys(await getTask(id, 'id,status,createdAt:created_at,archivedAt:archived_at')), ['id', 'status', 'createdAt', 'archivedAt']);
	await finish(id, { prLink: 'https://github.com/acme/docs/pull/1' });
	assert.equal((await getTask(id, 'prLink:output->>prLink')).prLink, 'https://github.com/acme/docs/pull/1');
	const m = await req('POST', '/messages', { ...w, body: { task_id: id, body: 'Also add an example' } });
	assert.equal(m.status, 201, m.text);
	const t = await getTask(id, 'status,status_reason,runs(status,input)');
	assert.equal(t.status, 'queued');
	assert.equal(t.status_reason, 'follow_up');
	assert.equal(t.runs.length, 2);
	assert.ok(t.runs.some((r) => r.status === 'queued' && r.input.message === 'Also add an example'), JSON.stringify(t.runs));
	// the same through the RPC, after it completes again
	await finish(id);
	assert.equal((await rpc('send_message', { task: id, body: 'And a changelog entry' }, w)).status, 200);
	assert.equal((await getTask(id, 'status')).status, 'queued');
});
await test('AGNT: create with assistant and description, process, stop, feedback, read under AGNT\'s names', async () => {
	const c = await req('POST', '/tasks', { ...w, headers: REPR, body: {
		title: 'Schedule Q2 planning meeting', agent: AGENT, description: 'Find a 90-minute slot next week.',
		type: 'scheduling', skills: ['calendar-management'], assignees: ['jane@a.example'], followers: ['cto@a.example'],
	} });
	assert.equal(c.status, 201, c.text);
	const id = c.json[0].id;
	const p = await rpc('process_task', { task: id, message: 'Prioritize mornings if possible.' }, w);
	assert.equal(p.status, 200, p.text);
	assert.equal(p.json.status, 'queued');
	assert.equal((await rpc('stop_task', { task: id }, w)).json.status, 'on_hold');
	assert.equal((await rpc('process_task', { task: id }, w)).json.status, 'queued');
	await finish(id);
	const fb = await req('PATCH', `/tasks?id=eq.${id}`, { ...w, body: { feedback: 'like' } });
	assert.equal(fb.status, 204, fb.text);
	const t = await getTask(id, 'id,account,title,description,assistant:agent,type,status,ownerEmail:owner,assignedUsers:assignees,followers,skills,feedback,activities(type:event,from:from_status,to:to_status,timestamp:created_at),executions:runs(id,status,startedAt:started_at,completedAt:ended_at),createdAt:created_at,updatedAt:updated_at');
	assert.equal(t.assistant, AGENT);
	assert.equal(t.description, 'Find a 90-minute slot next week.');
	assert.equal(t.ownerEmail, `owner@${A}.example`);
	assert.deepEqual(t.assignedUsers, ['jane@a.example']);
	assert.deepEqual(t.followers, ['cto@a.example']);
	assert.equal(t.feedback, 'like');
	assert.equal(t.status, 'completed');
	assert.ok(t.activities.some((a) => a.type === 'status_changed' && a.from === 'in_progress' && a.to === 'completed'), JSON.stringify(t.activities));
	assert.ok(t.executions.length >= 1);
	const put = await req('PATCH', `/tasks?id=eq.${id}`, { ...w, headers: REPR, body: { title: 'Schedule Q2 planning meeting (updated)', description: 'Leadership team plus new VP of Product.' } });
	assert.equal(put.status, 200, put.text);
	assert.equal(put.json[0].prompt, 'Leadership team plus new VP of Product.');
	const del = await req('DELETE', `/tasks?id=eq.${id}`, w);
	assert.equal(del.status, 204);
});

// --- paging list_tasks -------------------------------------------------------------------
await test('list_tasks pages with page_size and page_offset over GET and POST', async () => {
	const total = Number(sql(`SELECT count(*) FROM agent_tasks_internal.tasks WHERE account = ${lit(A)} AND archived_at IS NULL`));
	assert.ok(total >= 5, `${total} tasks`);
	const g1 = await req('GET', '/rpc/list_tasks?page_size=2', { key: keys.read });
	assert.equal(g1.status, 200, g1.text);
	assert.equal(g1.json.results.length, 2);
	assert.equal(g1.json.count, total);
	assert.equal(g1.json.limit, 2);
	const g2 = await req('GET', '/rpc/list_tasks?page_size=2&page_offset=2', { key: keys.read });
	assert.equal(g2.json.offset, 2);
	assert.equal(g2.json.results.length, 2);
	assert.ok(g2.json.results.every((t) => !g1.json.results.some((u) => u.id === t.id)), 'pages do not overlap');
	const p2 = await rpc('list_tasks', { page_size: 2, page_offset: 2 }, { key: keys.read });
	assert.equal(p2.status, 200, p2.text);
	assert.deepEqual(p2.json.results.map((t) => t.id), g2.json.results.map((t) => t.id));
	expectError(await req('GET', '/rpc/list_tasks?page_size=0', { key: keys.read }), 400, 'PT400', 'page_size 0');
	// ?limit= is PostgREST's own: it limits the rows of the answer (one
	// document), it does not reach the function
	const pg = await req('GET', '/rpc/list_tasks?limit=2', { key: keys.read });
	assert.equal(pg.status, 200, pg.text);
	assert.equal(pg.json.limit, 50);
});
await test('an unknown argument of create_task is 400 naming it (and the argument a camelCase key means)', async () => {
	const r = await rpc('create_task', { title: 'x', bogus: 1 }, w);
	expectError(r, 400, 'PT400', 'unknown argument');
	assert.equal(r.json.message, 'unknown argument of create_task: bogus');
	assert.match(r.json.details, /create_task takes .*callback_url.*title/);
	const flint = await rpc('create_task', { prompt: 'x', callbackUrl: 'https://a.example/cb', siteId: 's' }, w);
	expectError(flint, 400, 'PT400', 'Flint names');
	assert.equal(flint.json.message, 'unknown arguments of create_task: callbackUrl, siteId');
	assert.equal(flint.json.hint, 'callbackUrl is callback_url.');
	expectError(await rpc('create_task', { title: 'x', bogus: 1 }, { key: keys.read }), 403, 'PT403', 'a read key');
	// other functions: PostgREST's own 404, which lists the arguments sent
	const other = await rpc('process_task', { task: made.id, bogus: 1 }, w);
	expectError(other, 404, 'PGRST202', 'unknown argument of process_task');
	assert.match(other.json.message, /process_task\(bogus, task\)/);
	assert.equal(sql(`SELECT count(*) FROM agent_tasks_internal.tasks WHERE account = ${lit(A)} AND title = 'x'`), '0');
});

finishTests();
