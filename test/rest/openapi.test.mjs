// The OpenAPI 3 document (GET /rpc/openapi) through a real PostgREST
// (started by run.sh): what each key sees, that the operations it lists
// answer as it says, and that openapi-typescript (pinned in
// test/package-lock.json) turns it into types that TypeScript compiles.
// Prints one line per test and ends with "N passed, N failed".
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import assert from 'node:assert/strict';
import { finishTests, sql as psql, test } from '../harness.mjs';

const BASE = process.env.REST_URL;
const TEST_DIR = join(dirname(fileURLToPath(import.meta.url)), '..');
const ACCOUNT = `openapi-${randomBytes(4).toString('hex')}`;
const WORK = mkdtempSync(join(process.env.AT_SUITE_TMP || tmpdir(), 'openapi.'));

const sql = (query) => psql(query, ACCOUNT);
const key = (scopes) => sql(`SELECT agent_tasks.create_api_key('openapi ${scopes}', '${scopes}') ->> 'token'`);
const keys = { read: key('{task:read}'), write: key('{task:write}'), admin: key('{admin}') };

async function get(path, apiKey) {
	const res = await fetch(BASE + path, { headers: apiKey ? { 'X-Api-Key': apiKey } : {} });
	const text = await res.text();
	let json;
	try { json = JSON.parse(text); } catch { json = undefined; }
	return { status: res.status, type: res.headers.get('content-type'), text, json };
}
const methods = (doc, path) => Object.keys(doc.paths[path] || {}).sort();
const docs = {};

await test('GET /rpc/openapi: the document itself, OpenAPI 3 with both security schemes', async () => {
	for (const scope of ['read', 'write', 'admin']) {
		const r = await get('/rpc/openapi', keys[scope]);
		assert.equal(r.status, 200, `${scope}: ${r.text.slice(0, 300)}`);
		assert.match(r.type, /^application\/json/);
		docs[scope] = r.json;
	}
	const doc = docs.read;
	assert.equal(doc.openapi, '3.0.3');
	assert.deepEqual(doc.security, [{ apiKey: [] }, { bearer: [] }]);
	assert.deepEqual(doc.components.securitySchemes.apiKey, { ...doc.components.securitySchemes.apiKey, type: 'apiKey', in: 'header', name: 'X-Api-Key' });
	assert.equal(doc.components.securitySchemes.bearer.scheme, 'bearer');
	// POST too (the function changes nothing, so both verbs work)
	const res = await fetch(`${BASE}/rpc/openapi`, { method: 'POST', headers: { 'X-Api-Key': keys.read, 'Content-Type': 'application/json' }, body: '{}' });
	assert.equal(res.status, 200);
	assert.equal((await res.json()).openapi, '3.0.3');
});

await test('GET /rpc/openapi without a key: 401', async () => {
	const r = await get('/rpc/openapi');
	assert.equal(r.status, 401, r.text);
});

await test('each key sees what its scope may use, with the verbs PostgREST accepts', async () => {
	assert.deepEqual(methods(docs.read, '/tasks'), ['get']);
	assert.deepEqual(methods(docs.read, '/rpc/get_task'), ['get', 'post']);
	assert.equal(docs.read.paths['/rpc/create_task'], undefined, 'a reader cannot create');
	assert.equal(docs.read.paths['/webhook_endpoints'], undefined, 'webhooks are for admins');
	assert.deepEqual(methods(docs.write, '/rpc/create_task'), ['post'], 'volatile: POST only');
	assert.equal(docs.write.paths['/rpc/claim_runs'], undefined, 'claims are for workers');
	assert.deepEqual(methods(docs.write, '/tasks'), ['delete', 'get', 'patch', 'post'], 'the verbs of the INSTEAD OF triggers');
	// POST is there (its trigger refuses with PT403: the secret comes only from create_webhook)
	assert.deepEqual(methods(docs.admin, '/webhook_endpoints'), ['delete', 'get', 'patch', 'post']);
	assert.ok(docs.admin.paths['/rpc/claim_runs'].post);
	const tasks = docs.read.components.schemas.tasks;
	assert.match(tasks.description, /Tasks of the current account/);
	for (const [name, column] of Object.entries(tasks.properties))
		assert.ok(column.description, `tasks.${name} has a description`);
});

await test('the operations the document lists answer as it says', async () => {
	const doc = docs.read;
	// every view it offers to this key can be read with it
	for (const [path, item] of Object.entries(doc.paths).filter(([p]) => !p.startsWith('/rpc/'))) {
		assert.ok(item.get, path);
		const r = await get(`${path}?limit=1`, keys.read);
		assert.equal(r.status, 200, `GET ${path}: ${r.text.slice(0, 200)}`);
	}
	// a function offered over GET, with its query parameters
	const id = sql(`SELECT (agent_tasks.create_task(title => 'openapi probe', prompt => 'p')).id`);
	assert.deepEqual(doc.paths['/rpc/get_task'].get.parameters.map((p) => p.name), ['task']);
	const r = await get(`/rpc/get_task?task=${id}`, keys.read);
	assert.equal(r.status, 200, r.text);
	assert.equal(r.json.id, id);
	// and one that is not offered over GET is refused so by PostgREST
	const c = await get('/rpc/create_task?title=x', keys.write);
	assert.equal(c.status, 405, c.text);
});

await test('openapi-typescript generates types from it, and TypeScript compiles code that uses them', async () => {
	const docFile = join(WORK, 'openapi.json'), typesFile = join(WORK, 'agent_tasks.d.ts');
	writeFileSync(docFile, JSON.stringify(docs.admin));
	execFileSync('node', [join(TEST_DIR, 'node_modules/openapi-typescript/bin/cli.js'), docFile, '-o', typesFile],
		{ encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
	const types = readFileSync(typesFile, 'utf8');
	assert.match(types, /"\/tasks": \{/);
	assert.match(types, /"\/rpc\/create_task": \{/);
	assert.match(types, /\bcreate_task: \{/);
	assert.match(types, /\btasks: \{[^]*?\bprompt\?: string \| null;/);
	// a client written against the types: wrong field names would not compile
	writeFileSync(join(WORK, 'client.ts'), `import type { components, paths } from './agent_tasks';
type Task = components['schemas']['tasks'];
type CreateBody = NonNullable<paths['/rpc/create_task']['post']['requestBody']>['content']['application/json'];
type Created = paths['/rpc/create_task']['post']['responses'][200]['content']['application/json'];
const body: CreateBody = { title: 'typed', prompt: 'from generated types' };
const created: Created = { id: 'x', status: 'pending' };
const task: Task = created;
export const shown: string | null | undefined = task.status;
export { body };
`);
	writeFileSync(join(WORK, 'wrong.ts'), `import type { components, paths } from './agent_tasks';
export const task: components['schemas']['tasks'] = { no_such_column: 1 };
type CreateBody = NonNullable<paths['/rpc/create_task']['post']['requestBody']>['content']['application/json'];
export const body: CreateBody = { no_such_argument: 'x' };
`);
	const tsc = join(TEST_DIR, 'node_modules/typescript/bin/tsc');
	const opts = ['--noEmit', '--strict', '--skipLibCheck'];
	execFileSync('node', [tsc, ...opts, join(WORK, 'client.ts')], { encoding: 'utf8' });
	let refused = '';
	try {
		execFileSync('node', [tsc, ...opts, join(WORK, 'wrong.ts')], { encoding: 'utf8' });
	} catch (e) {
		refused = String(e.stdout);
	}
	assert.match(refused, /no_such_column/, 'an unknown column does not compile');
	assert.match(refused, /no_such_argument/, 'an unknown argument does not compile');
});

rmSync(WORK, { recursive: true, force: true });
finishTests();
