// Peers benchmark: tells when a system has finished its work.  Connects,
// prints "ready", waits for SIGUSR2 (sent once every item was submitted),
// then runs each query in turn until it returns done = true, and prints the
// time the last one did (epoch seconds).  One connection and cheap queries,
// because its server CPU counts against the system measured.
//   node poll.js URL INTERVAL_MS TIMEOUT_S QUERY...
'use strict'
const { Client } = require('pg')

const [url, intervalMs, timeoutS, ...queries] = process.argv.slice(2)
const sleep = ms => new Promise(resolve => setTimeout(resolve, ms))

async function main () {
  const client = new Client({ connectionString: url, application_name: 'peers poll' })
  await client.connect()
  const go = new Promise(resolve => process.once('SIGUSR2', resolve))
  console.log('ready')
  await go
  const deadline = Date.now() + Number(timeoutS) * 1000
  for (const query of queries) {
    while (!(await client.query(query)).rows[0].done) {
      if (Date.now() > deadline) {
        console.log('timeout')
        process.exit(1)
      }
      await sleep(Number(intervalMs))
    }
  }
  console.log((Date.now() / 1000).toFixed(3))
  await client.end()
}

main().catch(err => { console.error(`poll: ${err.message}`); process.exit(2) })
