#!/usr/bin/env node
// Test double for test/http/run.sh, on 127.0.0.1 only, no dependencies.
// It plays two parts:
//   an `http` agent:  POST /agent/<behaviour>
//       sync      200 {"status":"completed","output":{...}}
//       async     202 (the test then answers with the run token over SQL)
//       clarify   200 {"status":"needs_clarification","question":...}
//       reject    200 {"status":"failed","error":"cannot do that"}
//       fail500   500
//       flaky     500 on attempt 1, then like sync
//       slow      waits ?ms= (default 3000) then like sync
//       notjson   200 text/plain
//       redirect  302 to /agent/sync (must not be followed)
//       big       200 with a 2 MB JSON body (over the cap)
//   an OpenAI-compatible chat-completions endpoint: POST /v1/chat/completions
//       needs "Authorization: Bearer sk-test" (else 401 with an OpenAI error)
//       markers in the last user message choose the reply:
//       [error] 500 error object, [slow] 3 s delay, [break] a reply that breaks
//       the JSON Schema, [notjson] text where JSON was asked, [refuse] a refusal;
//       otherwise a reply that fits response_format's schema (or plain text),
//       always with usage {prompt_tokens 11, completion_tokens 4, total_tokens 15}.
// Control: GET /requests (everything received), GET /stats, POST /reset.
// Prints the port it listens on (argv[2], default: any free port) on stdout.
'use strict';
const http = require('http');

let requests = [];
let inFlight = 0;
let maxInFlight = 0;
let aborted = 0;
const attempts = new Map();

function send(res, status, body, headers = {}) {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  res.writeHead(status, Object.assign({'Content-Type': typeof body === 'string' ? 'text/plain' : 'application/json'}, headers));
  res.end(text);
}

// A value that fits a (simple) JSON Schema.
function sample(schema) {
  if (!schema || typeof schema !== 'object') return null;
  if (Array.isArray(schema.enum)) return schema.enum[0];
  const type = Array.isArray(schema.type) ? schema.type[0] : schema.type;
  switch (type) {
    case 'object': {
      const out = {};
      for (const [k, v] of Object.entries(schema.properties || {})) out[k] = sample(v);
      return out;
    }
    case 'array': return [sample(schema.items || {type: 'string'})];
    case 'string': return 'x'.repeat(Math.max(schema.minLength || 0, 5));
    case 'integer': return Math.max(schema.minimum || 0, 42);
    case 'number': return Math.max(schema.minimum || 0, 4.2);
    case 'boolean': return true;
    default: return null;
  }
}

function agent(res, behaviour, body, query) {
  const sync = () => send(res, 200, {status: 'completed',
    output: {echo: body.task && body.task.title, attempt: body.run && body.run.attempt}});
  switch (behaviour) {
    case 'sync': return sync();
    case 'async': return send(res, 202, {accepted: true});
    case 'clarify': return send(res, 200, {status: 'needs_clarification', question: 'Which colour?'});
    case 'reject': return send(res, 200, {status: 'failed', error: 'cannot do that'});
    case 'fail500': return send(res, 500, {error: 'internal'});
    case 'flaky': return body.run && body.run.attempt === 1 ? send(res, 500, {error: 'first try'}) : sync();
    case 'slow': return setTimeout(sync, Number(query.get('ms') || 3000));
    case 'notjson': return send(res, 200, 'plain words');
    case 'redirect': return send(res, 302, '', {Location: '/agent/sync'});
    case 'big': return send(res, 200, {status: 'completed', output: {blob: 'y'.repeat(2 * 1024 * 1024)}});
    default: return send(res, 404, {error: 'no such behaviour'});
  }
}

function chat(req, res, body) {
  if (req.headers.authorization !== 'Bearer sk-test')
    return send(res, 401, {error: {message: 'Incorrect API key provided', type: 'invalid_request_error'}});
  const msgs = Array.isArray(body.messages) ? body.messages : [];
  const last = [...msgs].reverse().find(m => m.role === 'user') || {content: ''};
  const text = String(last.content || '');
  const schema = body.response_format && body.response_format.type === 'json_schema'
    ? body.response_format.json_schema.schema : null;
  const reply = (content, extra = {}) => send(res, 200, {
    id: 'chatcmpl-test', object: 'chat.completion', created: 1700000000, model: body.model,
    choices: [{index: 0, finish_reason: 'stop',
               message: Object.assign({role: 'assistant', content}, extra)}],
    usage: {prompt_tokens: 11, completion_tokens: 4, total_tokens: 15}});
  if (text.includes('[error]'))
    return send(res, 500, {error: {message: 'The server had an error while processing your request', type: 'server_error'}});
  if (text.includes('[refuse]')) return reply(null, {refusal: 'I will not do that'});
  if (text.includes('[break]')) return reply(JSON.stringify({unexpected: true}));
  if (text.includes('[notjson]')) return reply('Sure! Here is your answer.');
  const answer = () => reply(schema ? JSON.stringify(sample(schema)) : 'Echo: ' + text.split('\n')[0]);
  if (text.includes('[slow]')) return setTimeout(answer, 3000);
  return answer();
}

const server = http.createServer((req, res) => {
  const url = new URL(req.url, 'http://127.0.0.1');
  let chunks = [];
  req.on('data', c => chunks.push(c));
  req.on('end', () => {
    const raw = Buffer.concat(chunks).toString('utf8');
    if (req.method === 'GET' && url.pathname === '/requests') return send(res, 200, requests);
    if (req.method === 'GET' && url.pathname === '/stats')
      return send(res, 200, {requests: requests.length, in_flight: inFlight, max_in_flight: maxInFlight, aborted});
    if (req.method === 'POST' && url.pathname === '/reset') {
      requests = []; maxInFlight = inFlight; aborted = 0; attempts.clear();
      return send(res, 200, {ok: true});
    }
    let body = {};
    try { body = raw ? JSON.parse(raw) : {}; } catch (e) { body = {unparsable: raw.slice(0, 200)}; }
    requests.push({method: req.method, path: url.pathname, headers: req.headers, body});
    inFlight++;
    maxInFlight = Math.max(maxInFlight, inFlight);
    let finished = false;
    res.on('finish', () => { finished = true; inFlight--; });
    res.on('close', () => { if (!finished) { inFlight--; aborted++; } });
    if (req.method !== 'POST') return send(res, 405, {error: 'POST only'});
    if (url.pathname.startsWith('/agent/')) return agent(res, url.pathname.slice(7), body, url.searchParams);
    if (url.pathname === '/v1/chat/completions') return chat(req, res, body);
    return send(res, 404, {error: 'not found'});
  });
});
server.keepAliveTimeout = 30000;
server.listen(Number(process.argv[2] || 0), '127.0.0.1', () => {
  console.log(server.address().port);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
