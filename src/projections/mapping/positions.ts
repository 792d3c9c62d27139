/**
 * Orders partition-log positions. Positions are opaque per adapter but all are numbers or
 * Redis stream ids (`<ms>-<seq>`): compared part by part as integers, never as text
 * (`"10-0" < "9-0"` as text).
 */
export const comparePositions = (a: string, b: string): number => {
  const pa = a.split("-")
  const pb = b.split("-")
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const sa = pa[i] ?? "0"
    const sb = pb[i] ?? "0"
    // up to 15 digits a double is exact: BigInt only for longer parts
    const [x, y] = sa.length < 16 && sb.length < 16 ? [Number(sa), Number(sb)] : [BigInt(sa), BigInt(sb)]
    if (x !== y) return x < y ? -1 : 1
  }
  return 0
}
