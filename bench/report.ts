/** One benchmark figure, printed as a JSON line, with the same-run baseline and the ratio. */
export interface Figure {
  readonly bench: string
  readonly unit: string
  readonly value: number
  readonly baseline?: string
  readonly baselineValue?: number
  readonly [extra: string]: unknown
}

export const report = (f: Figure): void => {
  const ratio = f.baselineValue ? Math.round((f.value / f.baselineValue) * 1000) / 1000 : undefined
  console.log(JSON.stringify(ratio === undefined ? f : { ...f, ratio }))
}

/** Runs `fn` and returns operations per second for `count` operations. */
export const rate = async (count: number, fn: () => Promise<void>): Promise<number> => {
  const t0 = process.hrtime.bigint()
  await fn()
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9
  return Math.round(count / seconds)
}

export const percentile = (sorted: ReadonlyArray<number>, p: number): number =>
  sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!
