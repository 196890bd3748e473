// Peers benchmark: a graphile-worker runner with one no-op task ("noop").
// Prints "ready" once it listens for new jobs (so that jobs added after it
// are picked up at once, not by polling); stops on SIGTERM.
//   node graphile.js URL CONCURRENCY
'use strict'
const { EventEmitter } = require('events')
const { run, Logger } = require('graphile-worker')

const [url, concurrency] = process.argv.slice(2)
// A line per job would cost the client more than the job.
const logger = new Logger(() => (level, message) => {
  if (level === 'error') console.error(`graphile-worker: ${message}`)
})

async function main () {
  const events = new EventEmitter()
  const listening = new Promise(resolve => events.once('pool:listen:success', resolve))
  const runner = await run({
    connectionString: url,
    concurrency: Number(concurrency),
    noHandleSignals: true,
    logger,
    events,
    taskList: { noop: async () => {} }
  })
  await listening
  process.once('SIGTERM', () => {
    setTimeout(() => process.exit(0), 10000).unref()    // never outlive the benchmark
    runner.stop()
  })
  console.log('ready')
  await runner.promise
}

main().catch(err => { console.error(`graphile: ${err.message}`); process.exit(2) })
