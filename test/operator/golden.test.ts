// The objects desired.ts builds from each sample ArcDeployment in deploy/samples, held against
// golden files (test/operator/golden/<sample>.yaml). A change to what the operator builds shows
// here as a readable diff of the objects a user would get. If the change is intended,
// regenerate with UPDATE_GOLDEN=1.
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments, stringify } from 'yaml';
import { desiredObjects } from '../../operator/src/desired.ts';
import type { ArcDeployment } from '../../operator/src/types.ts';

const SAMPLES = join(import.meta.dirname, '../../deploy/samples');
const GOLDEN_DIR = join(import.meta.dirname, 'golden');

/** Every ArcDeployment in the samples, with the namespace and uid the API server would give it. */
function samples(): { file: string; arcd: ArcDeployment }[] {
  const out: { file: string; arcd: ArcDeployment }[] = [];
  for (const file of readdirSync(SAMPLES).filter((f) => f.endsWith('.yaml')).sort()) {
    for (const doc of parseAllDocuments(readFileSync(join(SAMPLES, file), 'utf8'))) {
      const obj = doc.toJS() as ArcDeployment | null;
      if (obj?.kind !== 'ArcDeployment') continue;
      out.push({ file, arcd: { ...obj, metadata: { ...obj.metadata, namespace: obj.metadata.namespace ?? 'default', uid: '00000000-0000-4000-8000-000000000001' } } });
    }
  }
  return out;
}

describe('the objects built from deploy/samples', () => {
  const cases = samples();

  it('finds the samples', () => {
    expect(cases.map((c) => c.arcd.metadata.name)).toEqual(['arc-basic', 'arc-warehouse']);
  });

  it.each(cases.map((c) => [c.file, c.arcd] as const))('%s builds the objects in test/operator/golden/', (file, arcd) => {
    const rendered = desiredObjects(arcd, { tokenHash: 'golden-token-hash' })
      .map((o) => stringify(o, { lineWidth: 0 }))
      .join('---\n');
    const golden = join(GOLDEN_DIR, file);
    if (process.env['UPDATE_GOLDEN'] === '1') writeFileSync(golden, rendered);
    expect(existsSync(golden), `${golden} is missing: run with UPDATE_GOLDEN=1`).toBe(true);
    expect(rendered, `the objects differ from ${golden}; if intended, UPDATE_GOLDEN=1`).toBe(readFileSync(golden, 'utf8'));
  });
});
