import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CRD_PATH, REFERENCE_PATH, renderReference } from '../../hack/crd-reference.ts';

describe('docs/arcdeployment-reference.md', () => {
  it('is generated from the CRD and up to date (run `npm run docs:crd` after changing the CRD)', () => {
    expect(readFileSync(REFERENCE_PATH, 'utf8')).toBe(renderReference(readFileSync(CRD_PATH, 'utf8')));
  });

  it('documents every spec field with its default, bounds and the CEL messages', () => {
    const text = renderReference(readFileSync(CRD_PATH, 'utf8'));
    expect(text).toMatch(/\| `pool\.size` \| integer \| `5` \| ≥ 1; ≤ 256 \|/);
    expect(text).toMatch(/### Validation rules \(spec\)/);
    expect(text).toMatch(/## kubectl get columns/);
  });
});
