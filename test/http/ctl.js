#!/usr/bin/env node
// Ask the test server something:  node ctl.js PORT METHOD PATH [EXPR]
// Prints EXPR evaluated with d = the parsed JSON answer (default: d itself).
'use strict';
const http = require('http');
const [port, method, path, expr] = process.argv.slice(2);
const req = http.request({host: '127.0.0.1', port: Number(port), method, path}, res => {
  const chunks = [];
  res.on('data', c => chunks.push(c));
  res.on('end', () => {
    const d = JSON.parse(Buffer.concat(chunks).toString('utf8') || 'null');
    // eslint-disable-next-line no-new-func
    const v = expr ? new Function('d', 'return (' + expr + ');')(d) : d;
    console.log(typeof v === 'string' ? v : JSON.stringify(v));
  });
});
req.on('error', e => { console.error(e.message); process.exit(1); });
req.end();
