import { pipeline, type Readable } from 'node:stream';
import { constants, createGzip, createZstdCompress, gzipSync, zstdCompressSync } from 'node:zlib';

export type Encoding = 'zstd' | 'gzip';

/** Whole answers shorter than this go uncompressed: the saving would not pay for the work. */
export const MIN_COMPRESS_BYTES = 1024;

/**
 * The encoding to answer with, from `Accept-Encoding`: zstd before gzip (as Arc does), each at
 * its fastest level; `q=0` refuses one, `*` accepts both; undefined for none.
 */
export function negotiateEncoding(header: string | undefined): Encoding | undefined {
  if (header === undefined || header.trim() === '') return undefined;
  const q = new Map<string, number>();
  for (const part of header.split(',')) {
    const [name, ...params] = part.trim().toLowerCase().split(';');
    if (name === undefined || name === '') continue;
    const qParam = params.map((p) => p.trim()).find((p) => p.startsWith('q='));
    const value = qParam === undefined ? 1 : Number(qParam.slice(2));
    q.set(name === 'x-gzip' ? 'gzip' : name, Number.isFinite(value) ? value : 0);
  }
  const weight = (e: Encoding): number => q.get(e) ?? q.get('*') ?? 0;
  const zstd = weight('zstd');
  const gzip = weight('gzip');
  if (zstd > 0 && zstd >= gzip) return 'zstd';
  if (gzip > 0) return 'gzip';
  return undefined;
}

export function compressWhole(body: string, encoding: Encoding): Buffer {
  return encoding === 'zstd'
    ? zstdCompressSync(body, { params: { [constants.ZSTD_c_compressionLevel]: 1 } })
    : gzipSync(body, { level: constants.Z_BEST_SPEED });
}

/**
 * A streamed answer, compressed as it goes. An error of the answer breaks the compressed stream
 * too (no final frame), and destroying it (the client left) destroys the answer.
 */
export function compressStream(body: Readable, encoding: Encoding): Readable {
  const z = encoding === 'zstd' ? createZstdCompress({ params: { [constants.ZSTD_c_compressionLevel]: 1 } }) : createGzip({ level: constants.Z_BEST_SPEED });
  return pipeline(body, z, () => undefined);
}
