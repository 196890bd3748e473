// The lean receiver of test/bench/webhooks.sh: keep-alive HTTP on
// 127.0.0.1, verifies each request's signature with the Standard Webhooks
// library (the work a real receiver does), answers 200 (401 when the
// signature is wrong), and notes when each arrived.  The same receiver is
// measured with wrk, so its capacity and the dispatcher's rate are comparable.
//   SECRET=whsec_... node bench_receiver.js  -> prints {"port": P, "control_port": C}
// Control: GET /stats {count, bad, first_ms, last_ms}; POST /reset;
//          GET /arrivals [[title, arrived_ms], ...] for task.created events
'use strict';

const http = require('http');
const { Webhook } = require('standardwebhooks');

const wh = new Webhook(process.env.SECRET);
let count = 0, bad = 0, first = 0, last = 0;
let arrivals = [];

function nowMs() {
  return performance.timeOrigin + performance.now();
}

const server = http.createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    const t = nowMs();
    const body = Buffer.concat(chunks).toString('utf8');
    let payload;
    try {
      payload = wh.verify(body, req.headers);
    } catch (e) {
      bad++;
      res.writeHead(401);
      res.end();
      return;
    }
    count++;
    if (first === 0) first = t;
    last = t;
    const title = payload && payload.data && payload.data.title;
    if (typeof title === 'string' && title.startsWith('lat-')) arrivals.push([title, t]);
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '2' });
    res.end('ok');
  });
});
server.keepAliveTimeout = 60000;
server.maxRequestsPerSocket = 0;

const control = http.createServer((req, res) => {
  const url = new URL(req.url, 'http://x');
  let out = { ok: true };
  if (url.pathname === '/stats') out = { count, bad, first_ms: first, last_ms: last };
  else if (url.pathname === '/arrivals') out = arrivals;
  else if (url.pathname === '/reset') { count = 0; bad = 0; first = 0; last = 0; arrivals = []; }
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end(JSON.stringify(out));
});

server.listen(Number(process.env.PORT || 0), '127.0.0.1', () => {
  control.listen(0, '127.0.0.1', () => {
    process.stdout.write(JSON.stringify({ port: server.address().port, control_port: control.address().port }) + '\n');
  });
});
