import { DuckDBStructValue, DuckDBStructVector } from '@duckdb/node-api';

/**
 * @duckdb/node-api builds a STRUCT value's fields on a plain object, where assigning a field
 * named `__proto__` sets the object's prototype instead: the field vanishes from the answer (or,
 * when its value is an object, turns into the prototype). This reads each row's fields onto an
 * object without a prototype, through the vector's public API, wherever the STRUCT is nested.
 * Applied once, when the serializer is loaded; test/service/serialize.test.ts checks it.
 */
export function keepEveryStructField(): void {
  DuckDBStructVector.prototype.getItem = function getItem(this: DuckDBStructVector, itemIndex: number): DuckDBStructValue | null {
    if (!this.isItemValid(itemIndex)) return null;
    const entries = Object.create(null) as Record<string, ReturnType<DuckDBStructVector['getItemValue']>>;
    const names = this.type.entryNames;
    for (let i = 0; i < names.length; i++) entries[names[i]!] = this.entryVectorAt(i).getItem(itemIndex);
    return new DuckDBStructValue(entries);
  };
}
