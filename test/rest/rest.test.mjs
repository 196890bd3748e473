// REST end to end against a real PostgREST (started by run.sh).
// Clients: node's built-in fetch, and supabase-js and postgrest-js as
// applications use them.  The database is checked (and prepared where REST
// cannot, e.g. to age a rate-limit window) with psql as superuser.
// Prints one line per test and ends with "N passed, N failed".
import { createHmac, randomBytes, createHash } from 'node:crypto';
import assert from 'node:assert/strict';
import { finishTests, lit, sql, test } from '../harness.mjs';
import { createClient } from '@supabase/supabase-js';
import { PostgrestClient } from '@supabase/postgrest-js';

const BASE = process.env.REST_URL;
const JWT_SECRET = process.env.JWT_SECRET;
const RUN = randomBytes(4).toString('hex');
const A = `rest-a-${RUN}`, B = `rest-b-${RUN}`, RL = `rest-rl-${RUN}`, C = `rest-c-${RUN}`;

const responses = [];           // every response body and header block, for the secrets check
const called = new Set();       // RPCs and views reached over REST


function jwt(claims, secret = JWT_SECRET) {
	const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
	const head = b64({ alg: 'HS256', typ: 'JWT' }), body = b64(claims);
	const sig = createHmac('sha256', secret).update(`${head}.${body}`).digest('base64url');
	return `${head}.${body}.${sig}`;
}

async function req(method, path, { key, token, body, headers = {}, raw = false } = {}) {
	const h = { ...headers };
	if (key) h['X-Api-Key'] = key;
	if (token) h.Authorization = `Bearer ${token}`;
	if (body !== undefined) h['Content-Type'] = 'application/json';
	const res = await fetch(BASE + path, { method, headers: h, body: body === undefined ? undefined : JSON.stringify(body) });
	const buf = Buffer.from(await res.arrayBuffer());
	const text = buf.toString('utf8');
	responses.push({ path, text: text + '\n' + JSON.stringify([...res.headers]) });
	const m = path.match(/^\/(rpc\/)?([a-z_0-9]+)/);
	if (m && res.status < 500 && res.status !== 401 && res.status !== 403) called.add((m[1] ? 'rpc/' : '') + m[2]);
	let json;
	try { json = JSON.parse(text); } catch { json = undefined; }
	return { status: res.status, headers: res.headers, text, json, buf };
}
const rpc = (name, body, opts = {}) => req('POST', `/rpc/${name}`, { ...opts, body: body ?? {} });

function expectError(r, status, code, what) {
	assert.equal(r.status, status, `${what}: HTTP ${r.status} ${r.text}`);
	if (code) assert.equal(r.json?.code, code, `${what}: ${r.text}`);
	assert.ok(typeof r.json?.message === 'string', `${what}: PostgREST error body ${r.text}`);
}

// --- fixtures: keys made in SQL, as an administrator would --------------------
function makeKey(account, name, scopes, extra = '') {
	return sql(`SET agent_tasks.email = 'owner@${account}.example';
		SELECT agent_tasks.create_api_key(${lit(name)}, ${lit(scopes)}${extra}) ->> 'token'`, account);
}
// A key as create_api_key makes it when the extension has no JWT secret:
// opaque (at_...), for X-Api-Key only.
function makeOpaqueKey(account, name, scopes) {
	sql(`SELECT agent_tasks.set_jwt_secret(NULL)`);
	try {
		return makeKey(account, name, scopes);
	} finally {
		sql(`SELECT agent_tasks.set_jwt_secret(${lit(JWT_SECRET)})`);
	}
}
const JWT_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{43}$/;
const keys = {
	admin: makeKey(A, 'admin', '{admin}'),
	write: makeKey(A, 'write', '{task:write}'),
	read: makeKey(A, 'read', '{task:read}'),
	worker: makeKey(A, 'worker', '{worker}'),
	revoked: makeKey(A, 'to revoke', '{task:read}'),
	expired: makeKey(A, 'to expire', '{task:read}', `, now() + interval '1 day'`),
	b: makeKey(B, 'b admin', '{admin}'),
	rl: makeKey(RL, 'rate', '{task:write}'),
	opaque: makeOpaqueKey(A, 'opaque', '{task:read}'),
	cWrite: makeKey(C, 'client writer', '{task:write}'),
};
sql(`UPDATE agent_tasks_internal.api_keys SET expires_at = now() - interval '1 second' WHERE account = ${lit(A)} AND name = 'to expire'`);
const ids = {};

// --- authentication -------------------------------------------------------------
await test('no credentials: 401 with our error body', async () => {
	const r = await req('GET', '/tasks');
	expectError(r, 401, 'PT401', 'GET /tasks without a key');
	assert.match(r.json.hint, /X-Api-Key/);
});
await test('a wrong key: 401', async () => {
	expectError(await req('GET', '/tasks', { key: 'at_' + randomBytes(32).toString('base64url') }), 401, 'PT401', 'wrong key');
	expectError(await req('GET', '/tasks', { key: 'nonsense' }), 401, 'PT401', 'malformed key');
});
await test('keys are JWTs signed with PostgREST\'s secret; without the secret they are opaque at_ tokens', async () => {
	for (const k of ['admin', 'write', 'read', 'worker']) assert.match(keys[k], JWT_SHAPE, k);
	const [h, b, sig] = keys.read.split('.');
	assert.equal(createHmac('sha256', JWT_SECRET).update(`${h}.${b}`).digest('base64url'), sig);
	const claims = JSON.parse(Buffer.from(b, 'base64url').toString());
	assert.equal(claims.role, 'agent_tasks_reader');
	assert.equal(claims.account, A);
	assert.match(claims.key_id, /^[0-9a-f-]{36}$/);
	assert.match(keys.opaque, /^at_[A-Za-z0-9_-]{43}$/);
});
await test('API keys as "Authorization: Bearer <key>", for every scope', async () => {
	const read = await req('GET', '/tasks?select=id', { token: keys.read });
	assert.equal(read.status, 200, read.text);
	expectError(await rpc('create_task', { title: 'x' }, { token: keys.read }), 403, 'PT403', 'a read key writing');
	const made = await rpc('create_task', { title: 'made with a Bearer key' }, { token: keys.write });
	assert.equal(made.status, 200, made.text);
	assert.equal(made.json.account, A);
	assert.equal(made.json.created_by, `owner@${A}.example`);
	assert.equal(made.json.origin, 'rest');
	const named = await rpc('create_task', { title: 'made by a connector', origin: 'zapier' }, { token: keys.write });
	assert.equal(named.json?.origin, 'zapier', named.text);
	expectError(await req('GET', '/api_keys', { token: keys.write }), 403, 'PT403', 'a write key listing keys');
	const claimed = await rpc('claim_runs', { worker: 'bearer-worker' }, { token: keys.worker });
	assert.equal(claimed.status, 200, claimed.text);
	assert.deepEqual(claimed.json, [], 'nothing is queued yet');
	const listed = await req('GET', '/api_keys?select=name,prefix', { token: keys.admin });
	assert.equal(listed.status, 200, listed.text);
	assert.ok(listed.json.some((k) => k.name === 'read' && k.prefix === `...${keys.read.slice(-8)}`), listed.text);
});
await test('an opaque key as "Authorization: Bearer" is refused by PostgREST itself (401 PGRST301); as X-Api-Key it works', async () => {
	expectError(await req('GET', '/tasks', { token: keys.opaque }), 401, 'PGRST301', 'opaque bearer key');
	assert.equal((await req('GET', '/tasks?select=id', { key: keys.opaque })).status, 200);
	assert.equal((await req('GET', '/tasks?select=id', { key: keys.read })).status, 200, 'a JWT key as X-Api-Key');
});
await test('the apikey header: one of our keys is used, anything else (a project\'s anonymous JWT) ignored', async () => {
	const anon = jwt({ role: 'anon', iss: 'another-service' }, 'the secret of another service, 32+ chars');
	const viaApikey = await req('GET', '/tasks?select=id', { headers: { apikey: keys.read } });
	assert.equal(viaApikey.status, 200, viaApikey.text);
	const user = jwt({ role: 'agent_tasks_reader', account: A, email: 'reader@a.example', exp: Math.floor(Date.now() / 1000) + 300 });
	const withJwt = await req('GET', '/tasks?select=id', { token: user, headers: { apikey: anon } });
	assert.equal(withJwt.status, 200, withJwt.text);
	const alone = await req('GET', '/tasks', { headers: { apikey: anon } });
	expectError(alone, 401, 'PT401', 'a foreign JWT alone');
	assert.match(alone.json.message, /authentication required/);
	const wrong = await req('GET', '/tasks', { headers: { apikey: 'at_' + randomBytes(32).toString('base64url') } });
	expectError(wrong, 401, 'PT401', 'a wrong at_ key in apikey');
	assert.match(wrong.json.message, /invalid API key/);
});
await test('a revoked key is refused (401)', async () => {
	assert.equal((await req('GET', '/tasks', { key: keys.revoked })).status, 200);
	const id = sql(`SELECT id FROM agent_tasks_internal.api_keys WHERE account = ${lit(A)} AND name = 'to revoke'`);
	const r = await rpc('revoke_api_key', { key: id }, { key: keys.admin });
	assert.equal(r.status, 200, r.text);
	assert.equal(r.json.status, 'revoked');
	const after = await req('GET', '/tasks', { key: keys.revoked });
	expectError(after, 401, 'PT401', 'revoked key');
	assert.match(after.json.message, /revoked/);
	// its signature is still valid: PostgREST lets it through, authenticate() does not
	const bearer = await req('GET', '/tasks', { token: keys.revoked });
	expectError(bearer, 401, 'PT401', 'revoked key as Bearer');
	assert.match(bearer.json.message, /revoked/);
});
await test('an expired key is refused (401)', async () => {
	const r = await req('GET', '/tasks', { key: keys.expired });
	expectError(r, 401, 'PT401', 'expired key');
	assert.match(r.json.message, /expired/);
	const bearer = await req('GET', '/tasks', { token: keys.expired });
	expectError(bearer, 401, 'PT401', 'expired key as Bearer');
	assert.match(bearer.json.message, /expired/);
});
await test('a JWT verified by PostgREST passes (role and account from its claims)', async () => {
	const token = jwt({ role: 'agent_tasks_writer', account: A, email: 'jwt@a.example', exp: Math.floor(Date.now() / 1000) + 300 });
	const r = await rpc('create_task', { title: 'made with a JWT' }, { token });
	assert.equal(r.status, 200, r.text);
	assert.equal(r.json.account, A);
	assert.equal(r.json.created_by, 'jwt@a.example');
	const [h, b] = jwt({ role: 'agent_tasks_admin', account: A }).split('.');
	const forged = `${h}.${b}.${createHmac('sha256', 'not the secret').update(`${h}.${b}`).digest('base64url')}`;
	expectError(await req('GET', '/tasks', { token: forged }), 401, null, 'forged JWT');
});

// --- client libraries: supabase-js and postgrest-js ------------------------------
// supabase-js talks to <project>/rest/v1, which Supabase's gateway forwards
// to PostgREST; a fetch that drops the prefix stands in for the gateway.
const gatewayFetch = (input, init) => fetch(String(input).replace(`${BASE}/rest/v1`, BASE), init);
const supabase = (key, options = {}) => createClient(BASE, key, {
	auth: { persistSession: false, autoRefreshToken: false, detectSessionInUrl: false },
	db: { schema: 'agent_tasks' }, global: { fetch: gatewayFetch }, ...options });
const postgrest = (token) => new PostgrestClient(BASE, { headers: { Authorization: `Bearer ${token}` } });
const userJwt = () => jwt({ role: 'agent_tasks_writer', account: C, email: 'dev@c.example', exp: Math.floor(Date.now() / 1000) + 300 });
// create (rpc), list with count, filters, an embedded resource, a read rpc
async function clientRoundTrip(db, label, createdBy) {
	const ok = (r, what) => assert.equal(r.error, null, `${label}, ${what}: ${JSON.stringify(r.error)}`);
	const created = await db.rpc('create_task', { title: `${label}: created`, prompt: 'from a client library', labels: [label] });
	ok(created, 'create_task');
	assert.equal(created.data.origin, 'rest');
	assert.equal(created.data.created_by, createdBy);
	const id = created.data.id;
	const list = await db.from('tasks').select('*', { count: 'exact' });
	ok(list, 'list with count');
	assert.equal(list.count, Number(sql(`SELECT count(*) FROM agent_tasks_internal.tasks WHERE account = ${lit(C)}`)));
	assert.ok(list.data.some((t) => t.id === id));
	const filtered = await db.from('tasks').select('id,title,labels').contains('labels', [label]).ilike('title', `${label}:%`);
	ok(filtered, 'filter');
	assert.deepEqual(filtered.data, [{ id, title: `${label}: created`, labels: [label] }]);
	const embedded = await db.from('tasks').select('id, activities(event, actor)').eq('id', id).single();
	ok(embedded, 'embed');
	assert.ok(embedded.data.activities.some((a) => a.event === 'created' && a.actor === createdBy), JSON.stringify(embedded.data));
	const got = await db.rpc('get_task', { task: id });
	ok(got, 'get_task');
	assert.equal(got.data.title, `${label}: created`);
	const refused = await db.rpc('create_api_key', { name: 'not for a writer' });
	assert.equal(refused.status, 403, JSON.stringify(refused.error));
	// the resource verbs (INSTEAD OF triggers): insert, update, delete
	const inserted = await db.from('tasks').insert({ prompt: `${label}: inserted as a row`, labels: [label] }).select().single();
	ok(inserted, 'insert');
	assert.equal(inserted.status, 201);
	assert.equal(inserted.data.title_derived, true);
	const updated = await db.from('tasks').update({ priority: 7, labels: [label, 'updated'] }).eq('id', inserted.data.id).select('priority,labels').single();
	ok(updated, 'update');
	assert.deepEqual(updated.data, { priority: 7, labels: [label, 'updated'] });
	const deleted = await db.from('tasks').delete().eq('id', inserted.data.id);
	ok(deleted, 'delete');
	assert.equal(deleted.status, 204);
	assert.equal(sql(`SELECT count(*) FROM agent_tasks_internal.tasks WHERE account = ${lit(C)} AND id = ${lit(inserted.data.id)}`), '0');
}
await test('postgrest-js with an agent_tasks key (Bearer): create, list with count, filter, embed, rpc, insert, update, delete', async () => {
	await clientRoundTrip(postgrest(keys.cWrite), 'postgrest-js-key', `owner@${C}.example`);
});
await test('postgrest-js with a JWT: create, list with count, filter, embed, rpc, insert, update, delete', async () => {
	await clientRoundTrip(postgrest(userJwt()), 'postgrest-js-jwt', 'dev@c.example');
});
await test('supabase-js with an agent_tasks key (apikey and Bearer): create, list with count, filter, embed, rpc, insert, update, delete', async () => {
	await clientRoundTrip(supabase(keys.cWrite), 'supabase-js-key', `owner@${C}.example`);
});
await test('supabase-js with the project\'s anonymous JWT as apikey and a user\'s JWT: create, list with count, filter, embed, rpc, insert, update, delete', async () => {
	const anonKey = jwt({ role: 'agent_tasks_rest_anon' });
	await clientRoundTrip(supabase(anonKey, { accessToken: async () => userJwt() }), 'supabase-js-jwt', 'dev@c.example');
	// the anonymous key alone reaches nothing
	const anon = await supabase(anonKey).from('tasks').select('id');
	assert.equal(anon.status, 401, JSON.stringify(anon.error));
});

// --- the OpenAPI document -------------------------------------------------------
let openapi;
await test('GET / returns the OpenAPI document describing the calls', async () => {
	const r = await req('GET', '/', { key: keys.admin });
	assert.equal(r.status, 200, r.text.slice(0, 300));
	openapi = r.json;
	assert.equal(openapi.swagger, '2.0');
	assert.match(openapi.info.title, /agent_tasks/);
	for (const p of ['/tasks', '/runs', '/activities', '/rpc/create_task', '/rpc/process_task', '/rpc/create_api_key', '/rpc/schedule_task'])
		assert.ok(openapi.paths[p], `path ${p} in the OpenAPI document`);
	const create = openapi.paths['/rpc/create_task'].post;
	assert.match(`${create.summary} ${create.description}`, /Create a task/);
	assert.match(openapi.definitions.tasks.description, /Tasks of the current account/);
	assert.ok(openapi.definitions.tasks.properties.status.description, 'columns are described');
});
await test('the OpenAPI document follows the key: a read key is not offered writes of keys', async () => {
	const r = await req('GET', '/', { key: keys.read });
	assert.equal(r.status, 200);
	assert.ok(r.json.paths['/tasks']);
	assert.ok(!r.json.paths['/rpc/create_api_key'], 'create_api_key hidden from a read key');
	assert.ok(!r.json.paths['/rpc/create_task'], 'create_task hidden from a read key');
});

// --- tasks: create, read, filters, embedding ----------------------------------------
await test('create tasks (task:write) and read them back', async () => {
	const mk = async (body, key = keys.write) => {
		const r = await rpc('create_task', body, { key });
		assert.equal(r.status, 200, r.text);
		return r.json;
	};
	ids.bug = (await mk({ title: 'Fix the login bug', prompt: 'Users cannot log in with SSO', type: 'bug', labels: ['auth'] })).id;
	ids.page = (await mk({ title: 'Add an About page', prompt: 'With a team section', type: 'feature', context: { repository: 'acme/site' } })).id;
	ids.other = (await mk({ title: 'Someone else', owner: 'someone@a.example', assignees: ['someone@a.example'] })).id;
	ids.archived = (await mk({ title: 'Old work', type: 'chore' })).id;
	ids.queued = (await mk({ title: 'Run it now', auto_process: true })).id;
	const g = await req('GET', `/rpc/get_task?task=${ids.bug}`, { key: keys.read });
	assert.equal(g.status, 200, g.text);
	assert.equal(g.json.title, 'Fix the login bug');
	assert.equal(g.json.owner, `owner@${A}.example`);
});
await test('a read-only key cannot write (403)', async () => {
	const r = await rpc('create_task', { title: 'nope' }, { key: keys.read });
	expectError(r, 403, 'PT403', 'read key creating');
	assert.match(r.json.details, /task:write/);
	expectError(await rpc('archive_task', { task: ids.bug }, { key: keys.read }), 403, 'PT403', 'read key archiving');
});
await test('a write key cannot manage keys (403, needs admin)', async () => {
	const r = await rpc('create_api_key', { name: 'x', scopes: ['task:read'] }, { key: keys.write });
	expectError(r, 403, 'PT403', 'write key creating a key');
	assert.match(r.json.details, /admin/);
	expectError(await req('GET', '/api_keys', { key: keys.write }), 403, 'PT403', 'write key listing keys');
});
await test('an admin key makes a key that acts as someone: email, in the body and in a filter, no quoting', async () => {
	const made = await rpc('create_api_key', { name: 'acts as', scopes: ['task:read'], email: `Helper@${A}.example` },
		{ token: keys.admin });
	assert.equal(made.status, 200, made.text);
	assert.equal(made.json.email, `helper@${A}.example`);
	const listed = await req('GET', `/api_keys?select=name,email&email=eq.helper@${A}.example`, { token: keys.admin });
	assert.equal(listed.status, 200, listed.text);
	assert.deepEqual(listed.json, [{ name: 'acts as', email: `helper@${A}.example` }]);
});
await test('a volatile function over GET is refused (405)', async () => {
	const r = await req('GET', '/rpc/create_task?title=sneaky', { key: keys.write });
	assert.equal(r.status, 405, r.text);
	assert.equal(sql(`SELECT count(*) FROM agent_tasks_internal.tasks WHERE account = ${lit(A)} AND title = 'sneaky'`), '0');
});
await test("account B's key gets 404 for account A's task", async () => {
	const r = await req('GET', `/rpc/get_task?task=${ids.bug}`, { key: keys.b });
	expectError(r, 404, 'PT404', 'get_task of another account');
	expectError(await rpc('process_task', { task: ids.bug }, { key: keys.b }), 404, 'PT404', 'process_task of another account');
	const list = await req('GET', `/tasks?id=eq.${ids.bug}`, { key: keys.b });
	assert.equal(list.status, 200);
	assert.deepEqual(list.json, []);
	const emb = await req('GET', `/runs?task_id=eq.${ids.queued}`, { key: keys.b });
	assert.deepEqual(emb.json, []);
});
await test('filters: status, type, search (full text), mine, archived', async () => {
	assert.equal((await rpc('archive_task', { task: ids.archived }, { key: keys.write })).status, 200);
	const get = async (q, key = keys.read) => {
		const r = await req('GET', `/tasks?select=id,title&${q}`, { key });
		assert.equal(r.status, 200, `${q}: ${r.text}`);
		return r.json.map((t) => t.id);
	};
	assert.deepEqual(await get('status=eq.queued'), [ids.queued]);
	assert.deepEqual(await get('type=eq.bug'), [ids.bug]);
	assert.deepEqual(await get('search=wfts(english).login%20SSO'), [ids.bug]);
	assert.deepEqual(await get('repository=eq.acme/site'), [ids.page]);
	assert.deepEqual(await get('archived=is.true'), [ids.archived]);
	assert.ok(!(await get('archived=is.false')).includes(ids.archived));
	const mine = await get('mine=is.true', keys.write);
	assert.ok(mine.includes(ids.bug) && !mine.includes(ids.other), `mine: ${mine}`);
	const someone = jwt({ role: 'agent_tasks_reader', account: A, email: 'someone@a.example' });
	const r = await req('GET', '/tasks?select=id&mine=is.true', { token: someone });
	assert.deepEqual(r.json.map((t) => t.id), [ids.other]);
});
await test('pagination with Prefer: count=exact and Content-Range', async () => {
	const r = await req('GET', '/tasks?select=id&order=id.desc&limit=2&offset=1', { key: keys.read, headers: { Prefer: 'count=exact' } });
	assert.ok([200, 206].includes(r.status), r.text);
	const total = Number(sql(`SELECT count(*) FROM agent_tasks_internal.tasks WHERE account = ${lit(A)}`));
	assert.equal(r.headers.get('content-range'), `1-2/${total}`);
	assert.equal(r.json.length, 2);
	const rng = await req('GET', '/tasks?select=id', { key: keys.read, headers: { Prefer: 'count=exact', Range: '0-0' } });
	assert.equal(rng.headers.get('content-range'), `0-0/${total}`);
	const lt = await req('GET', `/rpc/list_tasks?type=feature&page_size=1`, { key: keys.read });
	assert.equal(lt.status, 200, lt.text);
	assert.equal(lt.json.count, 1);
	assert.equal(lt.json.results[0].id, ids.page);
});
await test('embedding: tasks with runs, activities and messages; runs with their task', async () => {
	const r = await req('GET', `/tasks?id=eq.${ids.queued}&select=*,runs(*),activities(*),messages(*)`, { key: keys.read });
	assert.equal(r.status, 200, r.text);
	const t = r.json[0];
	assert.equal(t.runs.length, 1);
	assert.equal(t.runs[0].status, 'queued');
	assert.ok(t.activities.some((a) => a.event === 'created'), JSON.stringify(t.activities));
	assert.deepEqual(t.messages, []);
	const runs = await req('GET', `/runs?task_id=eq.${ids.queued}&select=id,status,tasks(title)`, { key: keys.read });
	assert.equal(runs.status, 200, runs.text);
	assert.equal(runs.json[0].tasks.title, 'Run it now');
	const act = await req('GET', `/activities?task_id=eq.${ids.queued}&select=event,tasks(status)&limit=1`, { key: keys.read });
	assert.equal(act.json[0].tasks.status, 'queued');
});

// --- the lifecycle and people over REST ------------------------------------------------
await test('lifecycle RPCs: process, stop, send_message, cancel, retry, set_task_status, feedback', async () => {
	const w = { key: keys.write };
	const ok = async (name, body, opts = w) => {
		const r = await rpc(name, body, opts);
		assert.equal(r.status, 200, `${name}: ${r.text}`);
		return r.json;
	};
	assert.equal((await ok('process_task', { task: ids.bug, message: 'please' })).status, 'queued');
	assert.equal((await ok('stop_task', { task: ids.bug })).status, 'on_hold');
	assert.equal((await ok('process_task', { task: ids.bug })).status, 'queued');
	await ok('send_message', { task: ids.bug, body: 'one more thing' });
	assert.equal((await ok('set_task_status', { task: ids.bug, status: 'in_progress' }, { key: keys.worker })).status, 'in_progress');
	assert.equal((await ok('set_task_status', { task: ids.bug, status: 'completed', output: { ok: true } }, { key: keys.worker })).status, 'completed');
	assert.equal((await ok('send_feedback', { task: ids.bug, feedback: 'like' })).feedback, 'like');
	assert.equal((await ok('retry_task', { task: ids.bug })).status, 'queued');
	assert.equal((await ok('cancel_task', { task: ids.bug })).status, 'cancelled');
	assert.equal((await ok('cancel_task', { task: ids.bug })).status, 'cancelled');
	const acts = await req('GET', `/activities?task_id=eq.${ids.bug}&select=event,from_status,to_status&order=id`, { key: keys.read });
	assert.ok(acts.json.some((a) => a.from_status === 'in_progress' && a.to_status === 'completed'), acts.text);
	const msgs = await req('GET', `/messages?task_id=eq.${ids.bug}&select=body`, { key: keys.read });
	assert.deepEqual(msgs.json.map((m) => m.body), ['please', 'one more thing']);
});
await test('people, updates, dependencies, archive and delete RPCs', async () => {
	const w = { key: keys.write };
	const ok = async (name, body) => {
		const r = await rpc(name, body, w);
		assert.equal(r.status, 200, `${name}: ${r.text}`);
		return r.json;
	};
	assert.deepEqual((await ok('set_assignees', { task: ids.page, emails: ['ann@a.example', 'bo@a.example'] })).assignees, ['ann@a.example', 'bo@a.example']);
	assert.deepEqual((await ok('add_followers', { task: ids.page, emails: ['cy@a.example'] })).followers, ['cy@a.example']);
	assert.deepEqual((await ok('remove_followers', { task: ids.page, emails: ['cy@a.example'] })).followers, []);
	assert.equal((await ok('update_task', { task: ids.page, patch: { priority: 5 } })).priority, 5);
	const dep = (await ok('create_task', { title: 'Depends on the page' })).id;
	await ok('add_dependency', { task: dep, depends_on: ids.page });
	const ready = await req('GET', `/ready_tasks?id=eq.${dep}`, { key: keys.read });
	assert.equal(ready.status, 200, ready.text);
	assert.deepEqual(ready.json, []);
	const deps = await req('GET', `/dependencies?task_id=eq.${dep}`, { key: keys.read });
	assert.equal(deps.json.length, 1, deps.text);
	await ok('remove_dependency', { task: dep, depends_on: ids.page });
	assert.equal((await ok('unarchive_task', { task: ids.archived })).archived, false);
	assert.equal(await ok('delete_task', { task: dep }), true);
	expectError(await req('GET', `/rpc/get_task?task=${dep}`, { key: keys.read }), 404, 'PT404', 'deleted task');
});

// --- every error status ------------------------------------------------------------------
await test('errors arrive with their HTTP status and our message, detail and hint', async () => {
	const w = { key: keys.write };
	const e400 = await rpc('create_task', { title: '' }, w);
	expectError(e400, 400, 'PT400', 'empty title');
	assert.match(e400.json.hint, /non-empty title/);
	expectError(await req('GET', `/rpc/get_task?task=00000000-0000-7000-8000-000000000000`, { key: keys.read }), 404, 'PT404', 'unknown task');
	const e409 = await rpc('retry_task', { task: ids.page }, w);
	expectError(e409, 409, 'PT409', 'retry of an unfinished task');
	await rpc('create_task', { title: 'Idem', idempotency_key: `k-${RUN}` }, w);
	const e422 = await rpc('create_task', { title: 'Idem, changed', idempotency_key: `k-${RUN}` }, w);
	expectError(e422, 422, 'PT422', 'idempotency mismatch');
	const again = await rpc('create_task', { title: 'Idem', idempotency_key: `k-${RUN}` }, w);
	assert.equal(again.status, 200);
	expectError(await rpc('create_task', { title: 'x', priority: 'high' }, w), 400, null, 'wrong type');
	expectError(await rpc('no_such_function', {}, w), 404, null, 'unknown function');
});

// --- rate limit ----------------------------------------------------------------------------
await test('rate limit: the 101st task creation in the window is refused with 429 and Retry-After', async () => {
	for (let i = 1; i <= 100; i++) {
		const r = await rpc('create_task', { title: `job ${i}` }, { key: keys.rl });
		assert.equal(r.status, 200, `creation ${i}: ${r.text}`);
	}
	const r = await rpc('create_task', { title: 'job 101' }, { key: keys.rl });
	expectError(r, 429, 'PT429', '101st creation');
	const retry = Number(r.headers.get('retry-after'));
	assert.ok(retry >= 1 && retry <= 3600, `Retry-After ${r.headers.get('retry-after')}`);
	assert.match(r.json.details, new RegExp(`allows 100 task creations per 1 hour\\. Retry after ${retry} seconds`));
	assert.match(r.json.hint, /Retry after \d+ seconds/);
	assert.equal(sql(`SELECT count(*) FROM agent_tasks_internal.tasks WHERE account = ${lit(RL)}`), '100');
	const limits = await req('GET', '/rate_limits', { key: keys.rl });
	assert.equal(limits.json[0].used, 100);
});
await test('rate limit: the next window accepts again', async () => {
	sql(`UPDATE agent_tasks_internal.rate_counters SET window_start = window_start - interval '1 hour',
		 window_end = window_end - interval '1 hour' WHERE account = ${lit(RL)}`);
	const r = await rpc('create_task', { title: 'job 101, next window' }, { key: keys.rl });
	assert.equal(r.status, 200, r.text);
	const limits = await req('GET', '/rate_limits', { key: keys.rl });
	assert.equal(limits.json[0].used, 1);
});
await test('set_rate_limit (admin) changes the account limit', async () => {
	const r = await rpc('set_rate_limit', { max_count: 1, period: '1 day' }, { key: keys.b });
	assert.equal(r.status, 200, r.text);
	assert.equal(r.json[0].max_count, 1);
	assert.equal((await rpc('create_task', { title: 'b1' }, { key: keys.b })).status, 200);
	expectError(await rpc('create_task', { title: 'b2' }, { key: keys.b }), 429, 'PT429', 'custom limit');
	assert.equal((await rpc('set_rate_limit', { max_count: null }, { key: keys.b })).status, 200);
	assert.equal((await rpc('create_task', { title: 'b2' }, { key: keys.b })).status, 200);
});

// --- keys over REST --------------------------------------------------------------------------
let restToken;
await test('create_api_key over REST returns the token once; api_keys never shows a secret', async () => {
	const r = await rpc('create_api_key', { name: 'made over REST', scopes: ['task:read'] }, { key: keys.admin });
	assert.equal(r.status, 200, r.text);
	restToken = r.json.token;
	responses.pop();		// the one response that must carry a token
	assert.match(restToken, JWT_SHAPE);
	assert.equal(r.json.bearer, true);
	const use = await req('GET', '/tasks?select=id&limit=1', { key: restToken });
	assert.equal(use.status, 200);
	assert.equal((await req('GET', '/tasks?select=id&limit=1', { token: restToken })).status, 200);
	const list = await req('GET', '/api_keys', { key: keys.admin });
	assert.equal(list.status, 200, list.text);
	assert.ok(list.json.length >= 6);
	for (const k of list.json) assert.deepEqual(Object.keys(k).filter((c) => /hash|token|secret/.test(c)), []);
	expectError(await req('GET', '/api_keys?select=key_hash', { key: keys.admin }), 400, null, 'selecting the hash');
});

// --- schedules with pg_cron --------------------------------------------------------------------
await test('schedule_task creates a pg_cron job whose command creates the task; unschedule removes it', async () => {
	const r = await rpc('schedule_task', { name: 'every minute', cron: '* * * * *', template: { title: 'Scheduled report', labels: ['cron'], auto_process: true } }, { key: keys.write });
	assert.equal(r.status, 200, r.text);
	assert.equal(r.json.active, true);
	assert.ok(r.json.next_run_at, 'next run computed');
	const job = r.json.job_name;
	const command = sql(`SELECT command FROM cron.job WHERE jobname = ${lit(job)}`);
	assert.match(command, /^SELECT agent_tasks_internal\.fire_schedule\(/);
	sql(`DO $$ BEGIN EXECUTE ${lit(command)}; END $$`);
	// (pg_cron itself may fire the per-minute job meanwhile: one task or more)
	const tasks = await req('GET', '/tasks?origin=eq.schedule&select=title,labels,status,owner', { key: keys.read });
	assert.ok(tasks.json.length >= 1, tasks.text);
	for (const t of tasks.json)
		assert.deepEqual(t, { title: 'Scheduled report', labels: ['cron'], status: 'queued', owner: `owner@${A}.example` });
	const s = await req('GET', '/schedules?select=name,cron,fire_count,last_task_id,active', { key: keys.read });
	assert.ok(s.json[0].fire_count >= 1, s.text);
	assert.ok(s.json[0].last_task_id);
	const u = await rpc('unschedule_task', { name: 'every minute' }, { key: keys.write });
	assert.equal(u.status, 200, u.text);
	assert.equal(sql(`SELECT count(*) FROM cron.job WHERE jobname = ${lit(job)}`), '0');
	expectError(await rpc('unschedule_task', { name: 'every minute' }, { key: keys.write }), 404, 'PT404', 'unschedule twice');
	expectError(await rpc('schedule_task', { name: 'x', cron: 'every day', template: { title: 't' } }, { key: keys.write }), 400, 'PT400', 'bad cron');
});

// --- artifacts and presence --------------------------------------------------------------------
await test('artifacts: attach, list, fetch raw bytes, delete; process_task files become run artifacts', async () => {
	const bytes = randomBytes(300);
	const a = await rpc('attach_artifact', { task: ids.page, name: 'blob.bin', content_base64: bytes.toString('base64') }, { key: keys.write });
	assert.equal(a.status, 200, a.text);
	assert.equal(a.json.sha256, createHash('sha256').update(bytes).digest('hex'));
	assert.equal(a.json.size, 300);
	const raw = await req('GET', `/rpc/fetch_artifact?artifact=${a.json.id}`, { key: keys.read, headers: { Accept: 'application/octet-stream' } });
	assert.equal(raw.status, 200, raw.text);
	assert.ok(raw.buf.equals(bytes), 'raw bytes round-trip');
	assert.match(raw.headers.get('content-disposition') || '', /^attachment; filename="blob.bin"/);
	assert.equal(raw.headers.get('content-type'), 'application/octet-stream');
	const any = await req('GET', `/rpc/fetch_artifact?artifact=${a.json.id}`, { key: keys.read });
	assert.equal(any.status, 200, any.text);
	assert.ok(any.buf.equals(bytes), 'raw bytes whatever the Accept header');
	const p = await rpc('process_task', { task: ids.page, message: 'with files', files: [{ name: 'a.txt', content_type: 'text/plain', content_base64: Buffer.from('hi').toString('base64') }, { url: 'https://files.example/b.png' }] }, { key: keys.write });
	assert.equal(p.status, 200, p.text);
	const list = await req('GET', `/artifacts?task_id=eq.${ids.page}&run_id=not.is.null&select=id,name,size,url&order=id`, { key: keys.read });
	assert.deepEqual(list.json.map(({ id, ...x }) => x), [{ name: 'a.txt', size: 2, url: null }, { name: 'b.png', size: null, url: 'https://files.example/b.png' }]);
	const txt = await req('GET', `/rpc/fetch_artifact?artifact=${list.json[0].id}`, { key: keys.read });
	assert.equal(txt.text, 'hi');
	assert.equal(txt.headers.get('content-type'), 'text/plain');
	assert.equal(txt.headers.get('x-content-type-options'), 'nosniff');
	const link = sql(`SELECT id FROM agent_tasks_internal.artifacts WHERE account = ${lit(A)} AND name = 'b.png'`);
	expectError(await req('GET', `/rpc/fetch_artifact?artifact=${link}`, { key: keys.read }), 409, 'PT409', 'fetching a link');
	expectError(await req('GET', `/rpc/fetch_artifact?artifact=${a.json.id}`, { key: keys.b }), 404, 'PT404', 'fetch from another account');
	const d = await rpc('delete_artifact', { artifact: a.json.id }, { key: keys.write });
	assert.equal(d.status, 200, d.text);
	expectError(await rpc('delete_artifact', { artifact: a.json.id }, { key: keys.write }), 404, 'PT404', 'delete twice');
});
await test('presence: touch_presence is idempotent, watchers lists, leave_presence removes', async () => {
	const t1 = await rpc('touch_presence', { task: ids.page, device_id: 'laptop' }, { key: keys.read });
	assert.equal(t1.status, 200, t1.text);
	const t2 = await rpc('touch_presence', { task: ids.page, device_id: 'laptop' }, { key: keys.read });
	assert.equal(t2.json.length, 1);
	assert.equal(t2.json[0].watcher, `owner@${A}.example`);
	const w = await req('GET', `/rpc/watchers?task=${ids.page}`, { key: keys.read });
	assert.equal(w.status, 200, w.text);
	assert.equal(w.json.length, 1);
	const pv = await req('GET', `/presence?task_id=eq.${ids.page}`, { key: keys.read });
	assert.equal(pv.json.length, 1);
	assert.equal((await rpc('leave_presence', { task: ids.page, device_id: 'laptop' }, { key: keys.read })).json, true);
	assert.deepEqual((await req('GET', `/rpc/watchers?task=${ids.page}`, { key: keys.read })).json, []);
	expectError(await req('GET', `/rpc/watchers?task=${ids.page}`, { key: keys.b }), 404, 'PT404', 'watchers of another account');
});

// --- agents and workers (80_engine), when present ---------------------------------------------
const AG = `ext-${RUN}`;
const hasEngine = () => Boolean(openapi.paths['/rpc/create_agent'] && openapi.paths['/rpc/claim_runs']);
async function queueAndClaim(title) {
	const t = await rpc('create_task', { title, agent: AG, auto_process: true }, { key: keys.write });
	assert.equal(t.status, 200, t.text);
	const c = await rpc('claim_runs', { worker: 'rest-worker', agents: [AG], max_runs: 1 }, { key: keys.worker });
	assert.equal(c.status, 200, c.text);
	assert.equal(c.json.length, 1, c.text);
	return { task: t.json.id, run: c.json[0].run_id };
}
await test('agents over REST: admin creates and alters, a writer may not', async () => {
	if (!hasEngine()) return;
	const ag = await rpc('create_agent', { name: AG, kind: 'external' }, { key: keys.admin });
	assert.equal(ag.status, 200, ag.text);
	expectError(await rpc('create_agent', { name: 'nope', kind: 'external' }, { key: keys.write }), 403, 'PT403', 'writer creating an agent');
	const al = await rpc('alter_agent', { name: AG, patch: { concurrency: 2 } }, { key: keys.admin });
	assert.equal(al.status, 200, al.text);
	assert.equal(al.json.concurrency, 2);
});
await test('the claim API over REST: a worker key claims, heartbeats and completes', async () => {
	if (!hasEngine()) return;
	const { task, run } = await queueAndClaim('For the external worker');
	const hb = await rpc('heartbeat_run', { run, worker: 'rest-worker' }, { key: keys.worker });
	assert.equal(hb.status, 200, hb.text);
	const c = await rpc('complete_run', { run, output: { answer: 42 }, worker: 'rest-worker' }, { key: keys.worker });
	assert.equal(c.status, 200, c.text);
	const done = await req('GET', `/rpc/get_task?task=${task}`, { key: keys.read });
	assert.equal(done.json.status, 'completed', done.text);
	assert.deepEqual(done.json.output, { answer: 42 });
	expectError(await rpc('claim_runs', { worker: 'w' }, { key: keys.write }), 403, 'PT403', 'writer claiming');
});
await test('the claim API over REST: report_progress', async () => {
	if (!hasEngine()) return;
	const { run } = await queueAndClaim('Progress');
	const r = await rpc('report_progress', { run, phase: 'working', message: 'half way', worker: 'rest-worker' }, { key: keys.worker });
	assert.equal(r.status, 200, r.text);
	assert.equal(r.json.phase, 'working');
	assert.equal((await rpc('complete_run', { run, output: {}, worker: 'rest-worker' }, { key: keys.worker })).status, 200);
});
await test('the claim API over REST: request_clarification, the answer re-queues, fail_run, wait_task', async () => {
	if (!hasEngine()) return;
	const { task, run } = await queueAndClaim('Second');
	const q = await rpc('request_clarification', { run, question: 'Which one?', worker: 'rest-worker' }, { key: keys.worker });
	assert.equal(q.status, 200, q.text);
	assert.equal((await rpc('send_message', { task, body: 'The first' }, { key: keys.write })).status, 200);
	const c3 = await rpc('claim_runs', { worker: 'rest-worker', agents: [AG] }, { key: keys.worker });
	assert.equal(c3.json.length, 1, c3.text);
	const f = await rpc('fail_run', { run: c3.json[0].run_id, error: 'gave up', retryable: false, worker: 'rest-worker' }, { key: keys.worker });
	assert.equal(f.status, 200, f.text);
	if (openapi.paths['/rpc/wait_task']) {
		const wt = await rpc('wait_task', { task, timeout: '1 second' }, { key: keys.read });
		assert.equal(wt.status, 200, wt.text);
		assert.equal(wt.json.status, 'failed');
	}
});
await test('drop_agent over REST', async () => {
	if (!hasEngine()) return;
	assert.equal((await rpc('create_agent', { name: `${AG}-idle`, kind: 'external' }, { key: keys.admin })).status, 200);
	const d = await rpc('drop_agent', { name: `${AG}-idle` }, { key: keys.admin });
	assert.equal(d.status, 200, d.text);
});

// --- every RPC and every view at least once ---------------------------------------------------
await test('a task hook that raises refuses the change with the HTTP status of its SQLSTATE', async () => {
	sql(`DO $$ BEGIN
			IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'rest_hook_owner') THEN
				CREATE ROLE rest_hook_owner;
			END IF;
		END $$;
		GRANT agent_tasks_admin TO rest_hook_owner;
		CREATE SCHEMA IF NOT EXISTS rest_hooks AUTHORIZATION rest_hook_owner;
		SET ROLE rest_hook_owner;
		CREATE OR REPLACE FUNCTION rest_hooks.keep(event text, task agent_tasks.tasks, previous_status text, data jsonb)
			RETURNS void LANGUAGE plpgsql AS $f$
		BEGIN
			IF task.labels @> '{keep}' THEN
				RAISE EXCEPTION USING ERRCODE = 'PT409', MESSAGE = 'this task is kept', HINT = 'Remove the label "keep".';
			END IF;
		END $f$;
		SELECT agent_tasks.create_hook('keep', '{task.cancelled}', 'rest_hooks.keep');`, A);
	try {
		const w = { key: keys.write };
		const kept = await rpc('create_task', { title: 'Kept over REST', labels: ['keep'] }, w);
		assert.equal(kept.status, 200, kept.text);
		const refused = await rpc('cancel_task', { task: kept.json.id }, w);
		expectError(refused, 409, 'PT409', 'cancel refused by a hook');
		assert.equal(refused.json.message, 'this task is kept');
		assert.match(refused.json.hint, /Remove the label/);
		const after = await req('GET', `/rpc/get_task?task=${kept.json.id}`, { key: keys.read });
		assert.equal(after.json.status, 'pending');
		const listed = await req('GET', '/hooks?select=name,events,run_as', { key: keys.admin });
		assert.deepEqual(listed.json, [{ name: 'keep', events: ['task.cancelled'], run_as: 'rest_hook_owner' }]);
	} finally {
		sql(`SELECT agent_tasks.drop_hook('keep')`, A);
	}
});

await test('every other RPC and view answers over REST (no 5xx)', async () => {
	const smoke = [];
	for (const [path, item] of Object.entries(openapi.paths)) {
		if (path === '/') continue;
		const name = path.replace(/^\//, '');
		if (called.has(name)) continue;
		let r;
		if (name.startsWith('rpc/')) {
			const params = (item.post?.parameters || []).find((p) => p.in === 'body')?.schema?.properties || {};
			const required = (item.post?.parameters || []).find((p) => p.in === 'body')?.schema?.required || [];
			const body = {};
			for (const p of required) body[p] = params[p]?.format === 'uuid' ? '00000000-0000-7000-8000-000000000000' : (params[p]?.type === 'array' ? [] : (params[p]?.format === 'jsonb' ? {} : 'x'));
			r = await rpc(name.slice(4), body, { key: keys.admin });
		} else {
			r = await req('GET', `/${name}?limit=1`, { key: keys.admin });
		}
		assert.ok(r.status < 500, `${name}: HTTP ${r.status} ${r.text}`);
		smoke.push(`${name}=${r.status}`);
	}
	console.log(`# reached only by the smoke call: ${smoke.join(' ') || 'none'}`);
	const missing = Object.keys(openapi.paths).filter((p) => p !== '/' && !called.has(p.slice(1)));
	assert.deepEqual(missing, []);
});

// --- secrets ----------------------------------------------------------------------------------
await test('secrets never appear in any response (key hashes, other tokens, webhook secrets)', async () => {
	const hashes = sql(`SELECT string_agg(encode(key_hash, 'hex') || ' ' || encode(key_hash, 'base64'), ' ') FROM agent_tasks_internal.api_keys`).split(/\s+/).filter((s) => s.length >= 20);
	const tokens = Object.values(keys).concat([restToken]);
	let secrets = [...hashes, ...tokens, JWT_SECRET];
	if (sql(`SELECT to_regclass('agent_tasks_internal.webhook_secrets') IS NOT NULL`) === 't') {
		const wh = sql(`SELECT coalesce(string_agg(secret::text, ' '), '') FROM agent_tasks_internal.webhook_secrets`).split(/\s+/).filter((x) => x.length >= 16);
		secrets = secrets.concat(wh);
	}
	assert.ok(responses.length > 100, `${responses.length} responses checked`);
	for (const { path, text } of responses)
		for (const s of secrets)
			assert.ok(!text.includes(s), `a secret appears in the response of ${path}`);
});

finishTests();
