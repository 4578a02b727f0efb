import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { timestampText } from '../../service/src/serialize.ts';
import { type RunningService, startService } from '../support/service.ts';

/** The JSON mapping of every DuckDB type family, read back through the real API as raw text. */
describe('JSON mapping of DuckDB types (docs/types.md)', () => {
  let svc: RunningService;
  beforeAll(async () => {
    svc = await startService();
  });
  afterAll(async () => svc.close());

  async function raw(sql: string): Promise<string> {
    const res = await svc.query({ sql });
    const text = await res.text();
    expect(res.status, text).toBe(200);
    const m = /"data":\[\[(.*)\]\],"row_count"/s.exec(text);
    expect(m, text).not.toBeNull();
    return m![1]!;
  }

  it.each([
    ['BOOLEAN', 'SELECT true', 'true'],
    ['INTEGER', 'SELECT 42::INTEGER', '42'],
    ['BIGINT within 2^53', 'SELECT 9007199254740991::BIGINT', '9007199254740991'],
    ['BIGINT beyond 2^53, every digit', 'SELECT 9007199254740993::BIGINT', '9007199254740993'],
    ['BIGINT minimum', 'SELECT (-9223372036854775808)::BIGINT', '-9223372036854775808'],
    ['UBIGINT maximum', 'SELECT 18446744073709551615::UBIGINT', '18446744073709551615'],
    ['HUGEINT', 'SELECT 170141183460469231731687303715884105727::HUGEINT', '170141183460469231731687303715884105727'],
    ['DECIMAL keeps its scale', 'SELECT 12.50::DECIMAL(10,2)', '12.50'],
    ['DECIMAL(38,10)', 'SELECT 12345678901234567890.0123456789::DECIMAL(38,10)', '12345678901234567890.0123456789'],
    ['DOUBLE', 'SELECT 0.1::DOUBLE', '0.1'],
    ['DOUBLE NaN', "SELECT 'nan'::DOUBLE", 'null'],
    ['DOUBLE infinity', "SELECT 'inf'::DOUBLE", 'null'],
    ['VARCHAR with quotes', `SELECT 'say "hi"\n'`, '"say \\"hi\\"\\n"'],
    ['DATE', "SELECT DATE '2026-02-03'", '"2026-02-03"'],
    ['TIME', "SELECT TIME '10:11:12.5'", '"10:11:12.5"'],
    ['TIMESTAMP', "SELECT TIMESTAMP '2026-01-01 10:00:00.123456'", '"2026-01-01T10:00:00.123456Z"'],
    ['TIMESTAMP before 1970', "SELECT TIMESTAMP '1969-12-31 23:59:59.5'", '"1969-12-31T23:59:59.5Z"'],
    ['TIMESTAMP_S', "SELECT TIMESTAMP_S '2026-01-01 10:00:01'", '"2026-01-01T10:00:01Z"'],
    ['TIMESTAMP_MS', "SELECT TIMESTAMP_MS '2026-01-01 10:00:01.250'", '"2026-01-01T10:00:01.25Z"'],
    ['TIMESTAMP_NS', "SELECT TIMESTAMP_NS '2026-01-01 10:00:00.123456789'", '"2026-01-01T10:00:00.123456789Z"'],
    ['TIMESTAMPTZ in UTC', "SELECT TIMESTAMPTZ '2026-01-01 10:00:00+02'", '"2026-01-01T08:00:00Z"'],
    ['infinite TIMESTAMP', "SELECT 'infinity'::TIMESTAMP", '"infinity"'],
    ['INTERVAL', 'SELECT INTERVAL 1 MONTH + INTERVAL 2 DAY + INTERVAL 3 SECOND', '{"months":1,"days":2,"micros":3000000}'],
    ['BLOB as base64', "SELECT '\\x01\\xFFab'::BLOB", '"Af9hYg=="'],
    ['UUID', "SELECT '6f1c6c1e-2b5c-4d7c-9a0b-0123456789ab'::UUID", '"6f1c6c1e-2b5c-4d7c-9a0b-0123456789ab"'],
    ['ENUM', "SELECT 'b'::ENUM('a','b')", '"b"'],
    ['BIT', "SELECT '1010'::BIT", '"1010"'],
    ['LIST with NULL', 'SELECT [1, NULL, 3]', '[1,null,3]'],
    ['ARRAY', 'SELECT [1, 2]::INTEGER[2]', '[1,2]'],
    ['STRUCT', "SELECT {'a': 1, 'b': [9007199254740993::BIGINT]}", '{"a":1,"b":[9007199254740993]}'],
    ['MAP', "SELECT MAP {'k': 1}", '[{"key":"k","value":1}]'],
    ['UNION', "SELECT union_value(num := 2)::UNION(num INTEGER, str VARCHAR)", '{"tag":"num","value":2}'],
    ['NULL', 'SELECT NULL', 'null'],
  ])('%s', async (_type, sql, expected) => {
    expect(await raw(sql)).toBe(expected);
  });

  it('never crashes on a value outside JavaScript dates (falls back to DuckDB text)', async () => {
    expect(await raw("SELECT TIMESTAMP '294247-01-10 04:00:54.775806'")).toMatch(/^"294247-01-10/);
  });

  it('formats epoch offsets exactly (pure)', () => {
    expect(timestampText(0n, 1_000_000n)).toBe('1970-01-01T00:00:00Z');
    expect(timestampText(-1n, 1_000_000n)).toBe('1969-12-31T23:59:59.999999Z');
    expect(timestampText(1_500_000_000n, 1_000_000_000n)).toBe('1970-01-01T00:00:01.5Z');
  });
});
