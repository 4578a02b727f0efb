// npm run bench [-- --quick] [-- --only=query,pool,memory,answers,operator-memory,sidecar,sidecar-cluster,remediation,scale,status-write] [-- --scale-count=1000]
// `sidecar-cluster`, `remediation`, `scale` and `status-write` need the local control plane (they start it) and
// are not in the default set; `scale` applies 100 ArcDeployments of 3 replicas unless --scale-count says more.
// Prints figures and ratios against baselines measured in the same run. Never a test.
import { benchAnswers, printAnswers } from './answers.ts';
import { benchMemory, printMemory } from './memory.ts';
import { benchOperatorMemory, printOperatorMemory } from './operator-memory.ts';
import { benchPool, printPool } from './pool.ts';
import { benchQuery, printQuery } from './query.ts';
import { benchQueryPath, printQueryPath } from './query-path.ts';
import { benchRemediation, printRemediation } from './remediation.ts';
import { benchScale, printScale } from './scale.ts';
import { benchSidecar, printSidecar } from './sidecar.ts';
import { benchSidecarInCluster, printSidecarInCluster } from './sidecar-cluster.ts';
import { benchStatusWrite, printStatusWrite } from './status-write.ts';

const args = process.argv.slice(2);
const quick = args.includes('--quick');
const onlyArg = args.find((a) => a.startsWith('--only='))?.slice('--only='.length);
const only = new Set((onlyArg ?? 'query,pool,memory,answers,operator-memory,sidecar').split(','));

console.log(`arc-operator benchmarks (${quick ? 'quick' : 'full'}) on ${process.version}, ${new Date().toISOString()}`);
if (only.has('pool')) printPool(await benchPool(quick ? 50_000 : 300_000));
if (only.has('query')) {
  printQueryPath(await benchQueryPath(quick ? 5_000 : 20_000, quick ? 2 : 3));
  printQuery(await benchQuery(quick ? 3 : 8, quick ? 2 : 3));
}
if (only.has('memory')) printMemory(await benchMemory());
if (only.has('answers')) printAnswers(await benchAnswers(quick));
if (only.has('operator-memory')) printOperatorMemory(benchOperatorMemory());
if (only.has('sidecar')) printSidecar(await benchSidecar(quick ? { sampleSeconds: 20, loadSeconds: 2, rounds: 4, podModeSeconds: 10 } : {}));
if (only.has('sidecar-cluster')) printSidecarInCluster(await benchSidecarInCluster({ seconds: quick ? 20 : 60 }));
if (only.has('remediation')) printRemediation(await benchRemediation({ trials: 20, defaultsTrials: quick ? 0 : 1 }));
if (only.has('status-write')) printStatusWrite(await benchStatusWrite(quick ? { seconds: 10, rounds: 2 } : {}));
if (only.has('scale')) {
  const count = Number(args.find((a) => a.startsWith('--scale-count='))?.slice('--scale-count='.length) ?? 100);
  printScale(await benchScale({ count }));
}
