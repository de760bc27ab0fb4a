// Base64 arrays from /api/runs/{id}/points straight into typed arrays (no per-point objects).
// The server writes little-endian values; every browser this runs on is little-endian too, so the
// decoded bytes are viewed in place without copying.

/** base64 text → Uint8Array (native Uint8Array.fromBase64 where the browser has it). */
export function base64Bytes(text) {
  if (typeof Uint8Array.fromBase64 === "function") return Uint8Array.fromBase64(text);
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i += 1) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

function view(Type, text, n) {
  if (text === null || text === undefined) return null;
  const bytes = base64Bytes(text);
  // A fresh Uint8Array starts at offset 0 of its own buffer, so any element size is aligned.
  const array = new Type(bytes.buffer, bytes.byteOffset, bytes.byteLength / Type.BYTES_PER_ELEMENT);
  if (n !== undefined && array.length !== n) throw new Error(`expected ${n} values, got ${array.length}`);
  return array;
}

export const float32 = (text, n) => view(Float32Array, text, n);
export const int16 = (text, n) => view(Int16Array, text, n);
export const int32 = (text, n) => view(Int32Array, text, n);

/** Decode a points payload: {n, x, y, label, cluster, values: {name: Float32Array}} plus its metadata. */
export function decodePoints(payload) {
  const n = payload.n;
  const values = {};
  for (const [name, text] of Object.entries(payload.values || {})) values[name] = float32(text, n);
  const categories = {}; // imported text columns: {name: {codes: Int32Array, names}}
  for (const [name, column] of Object.entries(payload.categories || {})) categories[name] = { codes: int32(column.codes, n), names: column.names };
  return {
    ...payload,
    x: float32(payload.x, n),
    y: float32(payload.y, n),
    label: int16(payload.label, n),
    cluster: int32(payload.cluster, n),
    values,
    categories,
  };
}
