// The peers' side of bench/peers/run: one workload on one system, printed as one line that the
// run script reads, the same shape as bench_sdk's (Flovyn's side):
//   jobs W N             -> "N seconds rate p50 p99"  (latency: enqueue to the job in a handler)
//   closed STEPS N C     -> "N seconds rate p50 p99"  (latency: start to the result, closed loop)
//   sleep N MS           -> "N p50 p99 max"           (lateness of a durable sleep of MS)
// Systems: graphile (graphile-worker), pgboss (pg-boss), dbos (DBOS Transact), restate (a Restate
// server already running; this process serves its handlers). Every figure is in milliseconds.
// Usage: node peer.mjs SYSTEM WORKLOAD ARGS...   (PEER_PG: the database URL; PEER_RESTATE_*: ports)
import { performance } from 'node:perf_hooks';

// The Restate SDK calls Promise.withResolvers (ES2024), which Node 20 lacks: the standard's
// definition, for Node 20.
Promise.withResolvers ??= function () {
  let resolve, reject;
  const promise = new this((a, b) => ((resolve = a), (reject = b)));
  return { promise, resolve, reject };
};

const [system, workload, ...rest] = process.argv.slice(2);
const args = rest.map(Number);
const pgUrl = process.env.PEER_PG;
const now = () => performance.now();

function summary(lat) {
  lat.sort((a, b) => a - b);
  const at = (q) => (lat.length ? lat[Math.min(lat.length - 1, Math.floor(q * lat.length))] : 0);
  return { p50: at(0.5), p99: at(0.99), max: lat.length ? lat[lat.length - 1] : 0 };
}
function printRun(n, t0, lat) {
  const secs = (now() - t0) / 1000;
  const s = summary(lat);
  console.log(`${n} ${secs.toFixed(2)} ${(n / secs).toFixed(1)} ${s.p50.toFixed(1)} ${s.p99.toFixed(1)}`);
}
function printSleep(lat) {
  const s = summary(lat);
  console.log(`${lat.length} ${s.p50.toFixed(1)} ${s.p99.toFixed(1)} ${s.max.toFixed(1)}`);
}
const sleepMs = (ms) => new Promise((r) => setTimeout(r, ms));

// Four submitters enqueue n jobs, as Flovyn's side does.
async function submitAll(n, submit) {
  let next = 0;
  await Promise.all(
    [0, 1, 2, 3].map(async () => {
      while (next < n) {
        next++;
        await submit(now());
      }
    }),
  );
}

// Runs until `done()` says every job's completion is committed, checked every 5 ms.
async function untilDone(done) {
  while (!(await done())) await sleepMs(5);
}

async function graphile() {
  const { run, makeWorkerUtils } = await import('graphile-worker');
  const pg = (await import('pg')).default;
  const [w, n] = args;
  const utils = await makeWorkerUtils({ connectionString: pgUrl });
  await utils.migrate();
  const lat = [];
  const runner = await run({
    connectionString: pgUrl,
    concurrency: w,
    noHandleSignals: true,
    pollInterval: 1000,
    logger: new (await import('graphile-worker')).Logger(() => () => {}),
    taskList: { noop: async (p) => void lat.push(now() - p.t) },
  });
  const check = new pg.Client({ connectionString: pgUrl });
  await check.connect();
  const t0 = now();
  await submitAll(n, (t) => utils.addJob('noop', { t }));
  await untilDone(async () => {
    const r = await check.query('SELECT count(*)::int AS c FROM graphile_worker._private_jobs');
    return lat.length >= n && r.rows[0].c === 0; // a completed job is deleted
  });
  printRun(n, t0, lat);
  await runner.stop();
  await utils.release();
  await check.end();
}

async function pgboss() {
  const PgBoss = (await import('pg-boss')).default;
  const [w, n] = args;
  const boss = new PgBoss({ connectionString: pgUrl, max: w + 4, supervise: false, schedule: false });
  boss.on('error', (e) => console.error(e.message));
  await boss.start();
  const queue = `noop-${w}-${Date.now()}`;
  await boss.createQueue(queue);
  const lat = [];
  // pg-boss fetches in batches and waits its polling interval (0.5 s at least) between fetches:
  // each of the w workers takes up to 50 jobs a fetch.
  for (let i = 0; i < w; i++) {
    await boss.work(queue, { batchSize: 50, pollingIntervalSeconds: 0.5 }, async (jobs) => {
      for (const j of jobs) lat.push(now() - j.data.t);
    });
  }
  const t0 = now();
  await submitAll(n, (t) => boss.send(queue, { t }));
  await untilDone(async () => (await boss.getQueueSize(queue, { before: 'completed' })) === 0 && lat.length >= n);
  printRun(n, t0, lat);
  await boss.stop({ graceful: false, wait: false });
}

async function dbos() {
  const { DBOS } = await import('@dbos-inc/dbos-sdk');
  DBOS.setConfig({ name: 'bench', systemDatabaseUrl: pgUrl, logLevel: 'error', systemDatabasePoolSize: 20 });
  const noop = DBOS.registerWorkflow(async (t) => now() - t, { name: 'noop' });
  const stepFn = async (v) => v + 1;
  const steps = DBOS.registerWorkflow(
    async (k) => {
      let v = 0;
      for (let i = 0; i < k; i++) v = await DBOS.runStep(() => stepFn(v), { name: 'step' });
      return v;
    },
    { name: 'steps' },
  );
  const asleep = new Map();
  const late = [];
  const sleeper = DBOS.registerWorkflow(
    async (i, ms) => {
      if (!asleep.has(i)) asleep.set(i, now());
      await DBOS.sleep(ms);
      late.push(now() - asleep.get(i) - ms);
      return i;
    },
    { name: 'sleeper' },
  );
  await DBOS.launch();
  try {
    if (workload === 'jobs') {
      const [w, n] = args;
      const queueName = `jobs-${w}-${Date.now()}`;
      await DBOS.registerQueue(queueName, { workerConcurrency: w, minPollingIntervalMs: 10 });
      const handles = [];
      const t0 = now();
      await submitAll(n, async (t) => handles.push(await DBOS.startWorkflow(noop, { queueName })(t)));
      const lat = await Promise.all(handles.map((h) => h.getResult()));
      printRun(n, t0, lat);
    } else if (workload === 'closed') {
      const [k, n, c] = args;
      await closedLoop(n, c, async () => (await DBOS.startWorkflow(steps)(k)).getResult());
    } else if (workload === 'sleep') {
      const [n, ms] = args;
      const handles = [];
      for (let i = 0; i < n; i++) handles.push(await DBOS.startWorkflow(sleeper)(i, ms));
      await Promise.all(handles.map((h) => h.getResult()));
      printSleep(late);
    }
  } finally {
    await DBOS.shutdown();
  }
}

async function closedLoop(n, clients, once) {
  let next = 0;
  const lat = [];
  const t0 = now();
  await Promise.all(
    Array.from({ length: clients }, async () => {
      while (next < n) {
        next++;
        const s = now();
        await once();
        lat.push(now() - s);
      }
    }),
  );
  printRun(lat.length, t0, lat);
}

async function restate() {
  const restateSdk = await import('@restatedev/restate-sdk');
  const ingress = `http://127.0.0.1:${process.env.PEER_RESTATE_INGRESS}`;
  const admin = `http://127.0.0.1:${process.env.PEER_RESTATE_ADMIN}`;
  const port = Number(process.env.PEER_RESTATE_SERVICE);
  const asleep = new Map();
  const woke = new Map();
  const service = restateSdk.service({
    name: 'bench',
    handlers: {
      steps: async (ctx, k) => {
        let v = 0;
        for (let i = 0; i < k; i++) v = await ctx.run('step', async () => v + 1);
        return v;
      },
      sleep: async (ctx, req) => {
        if (!asleep.has(req.i)) asleep.set(req.i, now());
        await ctx.sleep(req.ms);
        // A handler that was suspended runs again from its start after the sleep: count its
        // first resumption only.
        if (!woke.has(req.i)) woke.set(req.i, now() - asleep.get(req.i) - req.ms);
        return req.i;
      },
    },
  });
  const server = await restateSdk.endpoint().bind(service).listen(port);
  const reg = await fetch(`${admin}/deployments`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ uri: `http://127.0.0.1:${port}`, force: true }),
  });
  if (!reg.ok) throw new Error(`registering the deployment: ${reg.status} ${await reg.text()}`);
  // The registration reaches the ingress shortly after: wait for a first call to go through.
  for (let i = 0; ; i++) {
    const r = await fetch(`${ingress}/bench/steps`, {
      method: 'POST',
      body: '0',
      headers: { 'content-type': 'application/json' },
    }).catch(() => null);
    if (r?.ok) break;
    if (i === 200) throw new Error(`the ingress does not reach the handlers: ${r?.status}`);
    await sleepMs(50);
  }
  const call = async (path, body) => {
    const r = await fetch(`${ingress}/bench/${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    if (!r.ok) throw new Error(`${path}: ${r.status}`);
    return r.json();
  };
  if (workload === 'closed') {
    const [k, n, c] = args;
    await closedLoop(n, c, () => call('steps', k));
  } else if (workload === 'sleep') {
    const [n, ms] = args;
    for (let i = 0; i < n; i++) await call('sleep/send', { i, ms }); // one-way: the handler runs on
    const until = now() + ms + 60000;
    while (woke.size < n && now() < until) await sleepMs(20);
    printSleep([...woke.values()]);
  }
  server?.close?.();
  process.exit(0);
}

const systems = { graphile, pgboss, dbos, restate };
if (!systems[system]) {
  console.error(`usage: node peer.mjs (${Object.keys(systems).join('|')}) WORKLOAD ARGS...`);
  process.exit(2);
}
await systems[system]();
process.exit(0);
