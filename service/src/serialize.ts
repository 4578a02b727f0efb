import {
  type DuckDBBitValue,
  type DuckDBBlobValue,
  type DuckDBDataChunk,
  type DuckDBDateValue,
  type DuckDBDecimalValue,
  type DuckDBIntervalValue,
  type DuckDBListValue,
  type DuckDBMapValue,
  type DuckDBStructValue,
  type DuckDBType,
  DuckDBTypeId,
  type DuckDBUnionValue,
  type DuckDBValue,
  type DuckDBValueConverter,
} from '@duckdb/node-api';
import { keepEveryStructField } from './struct-fields.ts';

keepEveryStructField();

/**
 * JSON mapping of DuckDB values (documented in docs/types.md; keep the two in step):
 * - BOOLEAN -> true/false; TINYINT..INTEGER, UTINYINT..UINTEGER, FLOAT, DOUBLE -> number
 *   (NaN and +-Infinity -> null, JSON has no such numbers)
 * - BIGINT, UBIGINT, HUGEINT, UHUGEINT, BIGNUM -> number written with every digit (exact, even
 *   beyond 2^53; a client that parses into doubles rounds, one that parses exactly does not)
 * - DECIMAL -> number written with its exact digits and scale (e.g. 12.50)
 * - DATE -> "YYYY-MM-DD" (outside years 0..9999: "-000043-03-15", "+010000-01-01");
 *   infinite dates -> "infinity" / "-infinity"; TIME -> "HH:MM:SS[.ffffff]"; TIMESTAMP (and _S/_MS/_NS) ->
 *   RFC 3339 "YYYY-MM-DDTHH:MM:SS[.fff...]Z" (naive timestamps are UTC by Arc's convention);
 *   TIMESTAMPTZ -> the same in UTC, with the date written as DATE is; infinite timestamps ->
 *   "infinity" / "-infinity"
 * - INTERVAL -> {"months":m,"days":d,"micros":n}
 * - VARCHAR, ENUM, UUID -> string; BLOB -> base64 string; BIT -> string of 0 and 1
 * - LIST, ARRAY -> array; STRUCT -> object; MAP -> array of {"key":k,"value":v};
 *   UNION -> {"tag":t,"value":v}; anything else -> its DuckDB text form
 */
type Json = unknown;

const rawJSON = (text: string): unknown => (JSON as unknown as { rawJSON(t: string): unknown }).rawJSON(text);

function finite(value: DuckDBValue): Json {
  const n = value as number;
  return Number.isFinite(n) ? n : null;
}

function exactInteger(value: DuckDBValue): Json {
  const b = value as bigint | number;
  if (typeof b === 'number') return b;
  if (b <= 9007199254740991n && b >= -9007199254740991n) return Number(b);
  return rawJSON(b.toString());
}

function decimal(value: DuckDBValue): Json {
  const d = value as DuckDBDecimalValue;
  return rawJSON(d.toString());
}

function pad(n: number | bigint, width: number): string {
  return n.toString().padStart(width, '0');
}

const SECONDS_PER_DAY = 86_400n;

function floorDiv(a: bigint, b: bigint): bigint {
  const q = a / b;
  return a % b !== 0n && a < 0n !== b < 0n ? q - 1n : q;
}

/**
 * The proleptic Gregorian calendar date of a count of days since 1970-01-01, for any day DuckDB
 * can hold (beyond the reach of JavaScript's Date). The year is astronomical: 1 BC is year 0.
 */
export function civilFromDays(days: number): { year: number; month: number; day: number } {
  const z = days + 719_468;
  const era = Math.floor(z / 146_097);
  const doe = z - era * 146_097;
  const yoe = Math.floor((doe - Math.floor(doe / 1460) + Math.floor(doe / 36_524) - Math.floor(doe / 146_096)) / 365);
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  const day = doy - Math.floor((153 * mp + 2) / 5) + 1;
  const month = mp < 10 ? mp + 3 : mp - 9;
  return { year: yoe + era * 400 + (month <= 2 ? 1 : 0), month, day };
}

/**
 * ISO 8601 text of a day: "YYYY-MM-DD", and outside years 0..9999 the expanded form with a
 * sign and at least six digits ("-000043-03-15" is 44 BC), as JavaScript's toISOString writes.
 */
export function dateText(days: number): string {
  const { year, month, day } = civilFromDays(days);
  const yyyy = year < 0 ? `-${pad(-year, 6)}` : year > 9999 ? `+${pad(year, 6)}` : pad(year, 4);
  return `${yyyy}-${pad(month, 2)}-${pad(day, 2)}`;
}

/**
 * RFC 3339 UTC text of a count of `unitsPerSecond` units since the epoch
 * (1 for seconds ... 1e9 for nanoseconds), with the fraction trimmed of trailing zeros.
 */
export function timestampText(units: bigint, unitsPerSecond: bigint): string {
  const secs = floorDiv(units, unitsPerSecond);
  const frac = units - secs * unitsPerSecond;
  const days = floorDiv(secs, SECONDS_PER_DAY);
  const daySecs = secs - days * SECONDS_PER_DAY;
  const digits = unitsPerSecond.toString().length - 1;
  const f = frac === 0n ? '' : `.${pad(frac, digits).replace(/0+$/, '')}`;
  const hh = pad(daySecs / 3600n, 2);
  const mi = pad((daySecs % 3600n) / 60n, 2);
  const ss = pad(daySecs % 60n, 2);
  return `${dateText(Number(days))}T${hh}:${mi}:${ss}${f}Z`;
}

function timestampWith(field: 'micros' | 'millis' | 'seconds' | 'nanos', unitsPerSecond: bigint) {
  return (value: DuckDBValue): Json => {
    const t = value as unknown as { isFinite: boolean } & Record<string, bigint>;
    const units = t[field] ?? 0n;
    if (!t.isFinite) return units > 0n ? 'infinity' : '-infinity';
    return timestampText(units, unitsPerSecond);
  };
}

function text(value: DuckDBValue): Json {
  return (value as { toString(): string }).toString();
}

function date(value: DuckDBValue): Json {
  const d = value as DuckDBDateValue;
  if (!d.isFinite) return d.days > 0 ? 'infinity' : '-infinity';
  return dateText(d.days);
}

function blob(value: DuckDBValue): Json {
  return Buffer.from((value as DuckDBBlobValue).bytes).toString('base64');
}

function bit(value: DuckDBValue): Json {
  return (value as DuckDBBitValue).toString();
}

function interval(value: DuckDBValue): Json {
  const i = value as DuckDBIntervalValue;
  return { months: i.months, days: i.days, micros: exactInteger(i.micros) };
}

const converters: Partial<Record<DuckDBTypeId, DuckDBValueConverter<Json>>> = {
  [DuckDBTypeId.BOOLEAN]: (v) => v,
  [DuckDBTypeId.TINYINT]: (v) => v,
  [DuckDBTypeId.SMALLINT]: (v) => v,
  [DuckDBTypeId.INTEGER]: (v) => v,
  [DuckDBTypeId.UTINYINT]: (v) => v,
  [DuckDBTypeId.USMALLINT]: (v) => v,
  [DuckDBTypeId.UINTEGER]: (v) => v,
  [DuckDBTypeId.BIGINT]: exactInteger,
  [DuckDBTypeId.UBIGINT]: exactInteger,
  [DuckDBTypeId.HUGEINT]: exactInteger,
  [DuckDBTypeId.UHUGEINT]: exactInteger,
  [DuckDBTypeId.BIGNUM]: exactInteger,
  [DuckDBTypeId.FLOAT]: finite,
  [DuckDBTypeId.DOUBLE]: finite,
  [DuckDBTypeId.DECIMAL]: decimal,
  [DuckDBTypeId.VARCHAR]: (v) => v,
  [DuckDBTypeId.ENUM]: text,
  [DuckDBTypeId.UUID]: text,
  [DuckDBTypeId.BLOB]: blob,
  [DuckDBTypeId.BIT]: bit,
  [DuckDBTypeId.DATE]: date,
  [DuckDBTypeId.TIME]: text,
  [DuckDBTypeId.TIME_NS]: text,
  [DuckDBTypeId.TIME_TZ]: text,
  [DuckDBTypeId.TIMESTAMP]: timestampWith('micros', 1_000_000n),
  [DuckDBTypeId.TIMESTAMP_TZ]: timestampWith('micros', 1_000_000n),
  [DuckDBTypeId.TIMESTAMP_S]: timestampWith('seconds', 1n),
  [DuckDBTypeId.TIMESTAMP_MS]: timestampWith('millis', 1000n),
  [DuckDBTypeId.TIMESTAMP_NS]: timestampWith('nanos', 1_000_000_000n),
  [DuckDBTypeId.INTERVAL]: interval,
  [DuckDBTypeId.SQLNULL]: () => null,
  [DuckDBTypeId.LIST]: (v, _t, convert) => (v as DuckDBListValue).items.map((x) => convertNested(x, _t, convert, 'list')),
  [DuckDBTypeId.ARRAY]: (v, _t, convert) => (v as DuckDBListValue).items.map((x) => convertNested(x, _t, convert, 'list')),
  [DuckDBTypeId.STRUCT]: (v, t, convert) => {
    // No prototype: a field named "__proto__" is a field like any other.
    const out = Object.create(null) as Record<string, Json>;
    const entries = (v as DuckDBStructValue).entries;
    const st = t as unknown as { entryNames: readonly string[]; entryTypes: readonly DuckDBType[] };
    st.entryNames.forEach((name, i) => {
      const x = entries[name];
      out[name] = x === null || x === undefined ? null : convert(x, st.entryTypes[i]!, convert);
    });
    return out;
  },
  [DuckDBTypeId.MAP]: (v, t, convert) => {
    const mt = t as unknown as { keyType: DuckDBType; valueType: DuckDBType };
    return (v as DuckDBMapValue).entries.map((e) => ({
      key: e.key === null ? null : convert(e.key, mt.keyType, convert),
      value: e.value === null ? null : convert(e.value, mt.valueType, convert),
    }));
  },
  [DuckDBTypeId.UNION]: (v, t, convert) => {
    const u = v as DuckDBUnionValue;
    const ut = t as unknown as { memberTags: readonly string[]; memberTypes: readonly DuckDBType[] };
    const memberType = ut.memberTypes[ut.memberTags.indexOf(u.tag)];
    if (u.value === null || memberType === undefined) return { tag: u.tag, value: null };
    return { tag: u.tag, value: convert(u.value, memberType, convert) };
  },
};

function convertNested(x: DuckDBValue, listType: DuckDBType, convert: DuckDBValueConverter<Json>, _kind: 'list'): Json {
  if (x === null) return null;
  const childType = (listType as unknown as { valueType: DuckDBType }).valueType;
  return convert(x, childType, convert);
}

/** Converts any DuckDB value to a JSON-ready value; never throws on an unknown type. */
export const toJsonValue: DuckDBValueConverter<Json> = (value, type, self) => {
  if (value === null) return null;
  const convert = converters[type.typeId];
  if (convert === undefined) return text(value);
  try {
    return convert(value, type, self);
  } catch {
    return text(value);
  }
};

/**
 * Column names made unique, predictably: each name keeps its place, and the second and later
 * columns of a name already used get the suffix _2, _3, ...: the smallest not taken by any
 * column of the answer (so `SELECT 1 a, 2 a, 3 a_2` gives a, a_3, a_2).
 */
export function uniqueColumnNames(names: readonly string[]): string[] {
  const taken = new Set(names);
  const used = new Set<string>();
  return names.map((name) => {
    if (!used.has(name)) {
      used.add(name);
      return name;
    }
    let n = 2;
    while (taken.has(`${name}_${n}`) || used.has(`${name}_${n}`)) n++;
    const unique = `${name}_${n}`;
    used.add(unique);
    return unique;
  });
}

/** Types whose values node-api already gives as JSON-ready numbers, booleans and strings. */
const AS_IS = new Set<DuckDBTypeId>([
  DuckDBTypeId.BOOLEAN,
  DuckDBTypeId.TINYINT,
  DuckDBTypeId.SMALLINT,
  DuckDBTypeId.INTEGER,
  DuckDBTypeId.UTINYINT,
  DuckDBTypeId.USMALLINT,
  DuckDBTypeId.UINTEGER,
  DuckDBTypeId.VARCHAR,
]);
const BIG_INTEGERS = new Set<DuckDBTypeId>([DuckDBTypeId.BIGINT, DuckDBTypeId.UBIGINT, DuckDBTypeId.HUGEINT, DuckDBTypeId.UHUGEINT]);

type Getter = (row: number) => Json;

/** How to read one column of a chunk: a direct path for the common scalar types, else the converter. */
function getterOf(chunk: DuckDBDataChunk, column: number): Getter {
  const vector = chunk.getColumnVector(column);
  const type = vector.type;
  const id = type.typeId;
  if (AS_IS.has(id)) return (row) => vector.getItem(row);
  if (id === DuckDBTypeId.DOUBLE || id === DuckDBTypeId.FLOAT) {
    return (row) => {
      const v = vector.getItem(row) as number | null;
      return v === null || !Number.isFinite(v) ? null : v;
    };
  }
  if (BIG_INTEGERS.has(id)) {
    return (row) => {
      const v = vector.getItem(row) as bigint | null;
      return v === null ? null : exactInteger(v);
    };
  }
  return (row) => {
    const v = vector.getItem(row);
    return v === null ? null : toJsonValue(v, type, toJsonValue);
  };
}

/** Rows of a chunk as arrays of JSON-ready values, appended to `out`. */
export function chunkRows(chunk: DuckDBDataChunk, maxRows: number, out: Json[][]): number {
  const rows = Math.min(chunk.rowCount, maxRows);
  if (rows <= 0) return 0;
  const getters: Getter[] = [];
  for (let c = 0; c < chunk.columnCount; c++) getters.push(getterOf(chunk, c));
  const width = getters.length;
  for (let r = 0; r < rows; r++) {
    const row: Json[] = new Array<Json>(width);
    for (let c = 0; c < width; c++) row[c] = getters[c]!(r);
    out.push(row);
  }
  return rows;
}

/** JSON text of rows, without the enclosing brackets ("[1,2],[3,4]"), or "" for none. */
export function rowsJsonFragment(rows: Json[][]): string {
  if (rows.length === 0) return '';
  return JSON.stringify(rows).slice(1, -1);
}

/**
 * One CSV cell. NULL is an empty cell, or `nullText` when the client asked for one; an empty
 * string is always quoted (""), and so is a string equal to `nullText`, so that the two can be
 * told apart. Cells are written as they are: nothing is added to formula-looking text
 * (docs/service.md says why).
 */
function csvField(value: Json, nullText: string | undefined): string {
  // Numbers and booleans never need quotes: no test, no copy.
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') return String(value);
  if (value === null || value === undefined) return nullText ?? '';
  const text = typeof value === 'string';
  const s = text ? value : JSON.stringify(value);
  if ((text && (s === '' || s === nullText)) || NEEDS_QUOTES.test(s)) return `"${s.replaceAll('"', '""')}"`;
  return s;
}

/** Cells RFC 4180 (or a reader that trims) would misread unquoted. */
const NEEDS_QUOTES = /^\s|\s$|[",\r\n]/;

/** RFC 4180 CSV lines (CRLF-terminated) for a header or rows. */
export function csvLine(values: readonly Json[], nullText?: string): string {
  let line = '';
  for (let i = 0; i < values.length; i++) line += (i === 0 ? '' : ',') + csvField(values[i], nullText);
  return `${line}\r\n`;
}

export function csvRows(rows: Json[][], nullText?: string): string {
  // One join per chunk: string concatenation would build a rope of every line first.
  const lines = new Array<string>(rows.length);
  for (let i = 0; i < rows.length; i++) lines[i] = csvLine(rows[i]!, nullText);
  return lines.join('');
}
