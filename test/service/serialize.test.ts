import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { civilFromDays, dateText, timestampText, uniqueColumnNames } from '../../service/src/serialize.ts';
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
    ['infinite DATE', "SELECT 'infinity'::DATE", '"infinity"'],
    ['minus infinite DATE', "SELECT '-infinity'::DATE", '"-infinity"'],
    ['infinite DATE in a list', "SELECT ['infinity'::DATE, DATE '2026-01-02']", '["infinity","2026-01-02"]'],
    ['BC DATE, as TIMESTAMP writes its date', "SELECT DATE '0044-03-15 (BC)'", '"-000043-03-15"'],
    ['BC TIMESTAMP', "SELECT TIMESTAMP '0044-03-15 (BC) 12:00:00'", '"-000043-03-15T12:00:00Z"'],
    ['DATE past year 9999', "SELECT DATE '5881580-07-10'", '"+5881580-07-10"'],
    ['STRUCT with a field named __proto__', "SELECT {'__proto__': 1, 'constructor': 2}", '{"__proto__":1,"constructor":2}'],
    ['__proto__ fields nested in lists and maps', "SELECT [{'__proto__': [1]}], MAP {'k': {'__proto__': 'x'}}", '[{"__proto__":[1]}],[{"key":"k","value":{"__proto__":"x"}}]'],
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

  it('writes timestamps beyond JavaScript dates exactly, with an expanded year', async () => {
    expect(await raw("SELECT TIMESTAMP '294247-01-10 04:00:54.775806'")).toBe('"+294247-01-10T04:00:54.775806Z"');
  });

  it('counts calendar days as JavaScript does, wherever both reach (pure)', () => {
    for (let days = -3_000_000; days <= 3_000_000; days += 997) {
      const d = new Date(days * 86_400_000);
      expect(civilFromDays(days)).toEqual({ year: d.getUTCFullYear(), month: d.getUTCMonth() + 1, day: d.getUTCDate() });
    }
    expect(dateText(0)).toBe('1970-01-01');
    expect(dateText(-719_529)).toBe('-000001-12-31');
  });

  it.each([
    [['a', 'b'], ['a', 'b']],
    [['a', 'a'], ['a', 'a_2']],
    [['a', 'a', 'a_2'], ['a', 'a_3', 'a_2']],
    [['a_2', 'a', 'a'], ['a_2', 'a', 'a_3']],
    [['x', 'x', 'x'], ['x', 'x_2', 'x_3']],
    [['A', 'a'], ['A', 'a']],
  ])('makes column names %j unique as %j (pure)', (names, expected) => {
    expect(uniqueColumnNames(names)).toEqual(expected);
  });

  it('formats epoch offsets exactly (pure)', () => {
    expect(timestampText(0n, 1_000_000n)).toBe('1970-01-01T00:00:00Z');
    expect(timestampText(-1n, 1_000_000n)).toBe('1969-12-31T23:59:59.999999Z');
    expect(timestampText(1_500_000_000n, 1_000_000_000n)).toBe('1970-01-01T00:00:01.5Z');
  });
});
