// `npm start`: the query service (and the sidecar, when present) on loopback with demo data,
// and how to talk to them. Ctrl-C stops both.
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { createInterface } from 'node:readline';

const root = new URL('..', import.meta.url).pathname;
const port = process.env.PORT ?? '8000';
const sidecarPort = process.env.SIDECAR_PORT ?? '8081';
const token = process.env.ARC_API_TOKENS ?? `demo_${randomBytes(12).toString('base64url')}`;
const children: ChildProcess[] = [];

let announced = false;

function run(name: string, script: string, env: Record<string, string>): ChildProcess {
  const child = spawn(process.execPath, ['--conditions=arc-source', script], {
    cwd: root,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  createInterface({ input: child.stdout }).on('line', (line) => {
    process.stdout.write(`[${name}] ${line}\n`);
    if (!announced && name === 'service' && line.includes('arc query service listening')) {
      announced = true;
      announce();
    }
  });
  child.once('exit', (code, signal) => {
    process.stdout.write(`[${name}] exited (${signal ?? code})\n`);
    shutdown(code ?? 1);
  });
  children.push(child);
  return child;
}

let stopping = false;
function shutdown(code: number): void {
  if (stopping) return;
  stopping = true;
  for (const c of children) if (c.exitCode === null) c.kill('SIGTERM');
  setTimeout(() => process.exit(code), 3000).unref();
  const exits = children.filter((c) => c.exitCode === null).map((c) => new Promise((resolve) => c.once('exit', resolve)));
  void Promise.all(exits).then(() => process.exit(code));
}
process.on('SIGINT', () => shutdown(0));
process.on('SIGTERM', () => shutdown(0));

run('service', 'service/src/main.ts', { PORT: port, HOST: process.env.HOST ?? '127.0.0.1', ARC_API_TOKENS: token, LOG_LEVEL: process.env.LOG_LEVEL ?? 'info' });
const sidecar = existsSync(`${root}/sidecar/src/main.ts`);
if (sidecar) {
  run('sidecar', 'sidecar/src/main.ts', {
    ARC_SERVICE_URL: `http://127.0.0.1:${port}`,
    ARC_API_TOKEN: token.split(',')[0]!,
    SIDECAR_PORT: sidecarPort,
    SIDECAR_HOST: '127.0.0.1',
    SCAN_ROOTS: process.env.SCAN_ROOTS ?? `${root}service`,
  });
}

function announce(): void {
  const base = `http://127.0.0.1:${port}`;
  console.log(`
arc-operator local demo
  query service  ${base}   (DuckDB in memory, demo tables cpu and mem)
${sidecar ? `  sidecar        http://127.0.0.1:${sidecarPort}/status\n` : ''}  API token      ${token}

Try:
  curl -s ${base}/api/v1/query -H 'Authorization: Bearer ${token}' -H 'Content-Type: application/json' \\
       -d '{"sql": "SELECT host, round(avg(usage_user), 1) AS avg_user FROM cpu GROUP BY host ORDER BY host"}'
  curl -s ${base}/api/v1/metrics -H 'Authorization: Bearer ${token}'
  curl -s ${base}/metrics | grep arc_service_pool
${sidecar ? `  curl -s http://127.0.0.1:${sidecarPort}/status\n` : ''}Ctrl-C stops everything.
`);
}
