// Peers benchmark: pg-boss 10 on queue QUEUE.
//   node pgboss.js work URL QUEUE WORKERS BATCH
//     WORKERS no-op workers, each fetching up to BATCH jobs at a time (batch
//     fetch), polling every 0.5 s (pg-boss's minimum); prints "ready";
//     stops on SIGTERM.  Creates the schema and the queue when missing.
//   node pgboss.js send URL QUEUE COUNT CLIENTS
//     opens CLIENTS connections, prints "ready", and on SIGUSR2 sends COUNT
//     jobs over them, CLIENTS at a time, then exits.
'use strict'
const PgBoss = require('pg-boss')

const [mode, url, queue, a, b] = process.argv.slice(2)

function boss (max) {
  // No maintenance or cron polling: the benchmark measures the job
  // lifecycle, and timed housekeeping would land in whichever round is running.
  const instance = new PgBoss({ connectionString: url, max, supervise: false, schedule: false, application_name: `peers pg-boss ${mode}` })
  instance.on('error', err => console.error(`pg-boss: ${err.message}`))
  return instance
}

async function work (workers, batchSize) {
  const b = boss(workers)
  await b.start()
  if (!(await b.getQueue(queue))) await b.createQueue(queue)
  for (let i = 0; i < workers; i++) {
    await b.work(queue, { batchSize, pollingIntervalSeconds: 0.5 }, async () => {})
  }
  process.once('SIGTERM', async () => {
    setTimeout(() => process.exit(0), 15000).unref()    // never outlive the benchmark
    await b.stop({ graceful: true, wait: true, timeout: 10000 })
    process.exit(0)
  })
  console.log('ready')
}

async function send (count, clients) {
  const b = boss(clients)
  await b.start()
  const db = b.getDb()
  // Connect every client before the clock starts, as pgbench does.
  await Promise.all(Array.from({ length: clients }, () => db.executeSql('SELECT pg_sleep(0.05)')))
  const go = new Promise(resolve => process.once('SIGUSR2', resolve))
  console.log('ready')
  await go
  let left = count
  await Promise.all(Array.from({ length: clients }, async () => {
    while (left > 0) {
      left--
      await b.send(queue, {})
    }
  }))
  await b.stop({ graceful: false, wait: true })
}

const run = mode === 'work' ? work(Number(a), Number(b)) : send(Number(a), Number(b))
run.catch(err => { console.error(`pgboss ${mode}: ${err.message}`); process.exit(2) })
