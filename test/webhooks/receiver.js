// A webhook receiver for the tests, on 127.0.0.1: verifies every signature
// with the Standard Webhooks reference library (npm standardwebhooks, pinned
// in package-lock.json) and records every request.
//
//   node receiver.js [--port P] [--control-port C]   (0 = any free port)
//   prints one JSON line {"port": P, "control_port": C} when listening.
//
// The hook port answers POSTs.  Behaviour is set per URL path on the
// control port (which stays up while the hook port is "down"):
//   POST /config  {"path": "/a", "secrets": ["whsec_..."],
//                  "responses": [{"status": 500}, {"status": 503, "retry_after": "2"},
//                                {"status": 200, "delay_ms": 20000}, ...],
//                  "default": {"status": 200}}
//       responses are used once each, in order, then "default" for ever.
//   POST /down    close the hook port (refuse connections); POST /up reopen it
//   GET  /deliveries[?path=/a]   every request so far, in arrival order
//   POST /reset   forget configuration and requests
// Each request is recorded with the answer chosen ("status") and whether
// that answer was fully written before the client went away ("completed").
// A request to a path with secrets is verified once per secret (so a
// rotation shows which secrets sign it) and with all of them through the
// library; a bad signature is answered 401.
'use strict';

const http = require('http');
const { Webhook } = require('standardwebhooks');

function arg(name, dflt) {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : dflt;
}

let hookPort = Number(arg('--port', 0));
const controlPort = Number(arg('--control-port', 0));

let configs = new Map();   // path -> {secrets, responses, default}
let deliveries = [];
const sockets = new Set();
let hookServer = null;

function nowMs() {
  return performance.timeOrigin + performance.now();
}

function readBody(req) {
  return new Promise((resolve) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', () => resolve(''));
  });
}

function verify(secrets, body, headers) {
  const result = { verified: null, verified_with: [], error: null };
  if (!secrets || secrets.length === 0) return result;
  for (let i = 0; i < secrets.length; i++) {
    try {
      new Webhook(secrets[i]).verify(body, headers);
      result.verified_with.push(i);
    } catch (e) {
      // not signed with this one
    }
  }
  result.verified = result.verified_with.length > 0;
  if (!result.verified) {
    try {
      new Webhook(secrets[0]).verify(body, headers);
    } catch (e) {
      result.error = String(e.message || e);
    }
  }
  return result;
}

async function onHook(req, res) {
  const arrived = nowMs();
  const body = await readBody(req);
  const path = new URL(req.url, 'http://x').pathname;
  const cfg = configs.get(path) || {};
  const v = verify(cfg.secrets, body, req.headers);
  let answer = { status: 200 };
  if (cfg.responses && cfg.responses.length > 0) answer = cfg.responses.shift();
  else if (cfg.default) answer = cfg.default;
  if (v.verified === false) answer = { status: 401, body: 'bad signature: ' + v.error };
  let parsed = null;
  try { parsed = JSON.parse(body); } catch (e) { parsed = null; }
  const record = {
    path,
    method: req.method,
    webhook_id: req.headers['webhook-id'] || null,
    webhook_timestamp: req.headers['webhook-timestamp'] || null,
    webhook_signature: req.headers['webhook-signature'] || null,
    content_type: req.headers['content-type'] || null,
    user_agent: req.headers['user-agent'] || null,
    verified: v.verified,
    verified_with: v.verified_with,
    verify_error: v.error,
    status: answer.status,
    completed: false,          // true once the whole response was handed to the client's socket
    arrived_ms: arrived,
    body: parsed,
    raw_body: parsed === null ? body.slice(0, 2000) : undefined,
  };
  deliveries.push(record);
  const send = () => {
    record.answered_ms = nowMs();
    const headers = { 'content-type': 'text/plain' };
    if (answer.retry_after !== undefined) headers['retry-after'] = String(answer.retry_after);
    if (answer.location) headers.location = answer.location;
    res.on('finish', () => { record.completed = true; });
    try {
      res.writeHead(answer.status, headers);
      res.end(answer.body !== undefined ? String(answer.body) : 'status ' + answer.status);
    } catch (e) {
      // the client gave up (timeout): nothing to answer
    }
  };
  if (answer.delay_ms) setTimeout(send, answer.delay_ms);
  else send();
}

function listenHook() {
  return new Promise((resolve, reject) => {
    hookServer = http.createServer((req, res) => { onHook(req, res); });
    hookServer.keepAliveTimeout = 60000;
    hookServer.on('connection', (s) => {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
    });
    hookServer.once('error', reject);
    hookServer.listen(hookPort, '127.0.0.1', () => {
      hookPort = hookServer.address().port;
      resolve();
    });
  });
}

function closeHook() {
  return new Promise((resolve) => {
    if (!hookServer) return resolve();
    hookServer.close(() => resolve());
    for (const s of sockets) s.destroy();
    sockets.clear();
    hookServer = null;
  });
}

function json(res, status, value) {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(value));
}

async function onControl(req, res) {
  const url = new URL(req.url, 'http://x');
  const body = await readBody(req);
  let input = {};
  try { input = body ? JSON.parse(body) : {}; } catch (e) { return json(res, 400, { error: 'bad json' }); }
  try {
    if (req.method === 'POST' && url.pathname === '/config') {
      configs.set(input.path, {
        secrets: input.secrets || [],
        responses: (input.responses || []).slice(),
        default: input.default || { status: 200 },
      });
      return json(res, 200, { ok: true });
    }
    if (req.method === 'POST' && url.pathname === '/down') {
      await closeHook();
      return json(res, 200, { ok: true });
    }
    if (req.method === 'POST' && url.pathname === '/up') {
      if (!hookServer) await listenHook();
      return json(res, 200, { ok: true, port: hookPort });
    }
    if (req.method === 'POST' && url.pathname === '/reset') {
      configs = new Map();
      deliveries = [];
      return json(res, 200, { ok: true });
    }
    if (req.method === 'GET' && url.pathname === '/deliveries') {
      const p = url.searchParams.get('path');
      return json(res, 200, p ? deliveries.filter((d) => d.path === p) : deliveries);
    }
    return json(res, 404, { error: 'unknown control call' });
  } catch (e) {
    return json(res, 500, { error: String(e) });
  }
}

(async () => {
  await listenHook();
  const control = http.createServer((req, res) => { onControl(req, res); });
  control.listen(controlPort, '127.0.0.1', () => {
    process.stdout.write(JSON.stringify({ port: hookPort, control_port: control.address().port }) + '\n');
  });
  const stop = () => { closeHook().then(() => process.exit(0)); };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
})();
