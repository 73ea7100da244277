/** Types for the two codec packages that ship none (only what codecs.ts calls). */
declare module 'snappyjs' {
  /** Raw snappy block format. */
  export function compress(input: Uint8Array): Uint8Array;
  export function uncompress(input: Uint8Array, maxLength?: number): Uint8Array;
}

declare module 'lz4js' {
  /** LZ4 frame format. */
  export function compress(input: Uint8Array, maxSize?: number): Uint8Array;
  export function decompress(input: Uint8Array, maxSize?: number): Uint8Array;
}
