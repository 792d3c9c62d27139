/** One series of a Prometheus text exposition. */
export interface Series {
  readonly name: string
  readonly labels: Readonly<Record<string, string>>
  readonly value: number
}

const LINE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g

/** Every series of `text` (comments skipped). */
export const parseExposition = (text: string): ReadonlyArray<Series> =>
  text.split("\n").flatMap((line) => {
    const m = LINE.exec(line)
    if (!m) return []
    const labels: Record<string, string> = {}
    for (const l of (m[2] ?? "").matchAll(LABEL)) labels[l[1]!] = l[2]!
    return [{ name: m[1]!, labels, value: Number(m[3]) }]
  })

/** The sum of the series named `name` whose labels include `labels` (0 when there is none). */
export const sumOf = (text: string, name: string, labels: Readonly<Record<string, string>> = {}): number =>
  parseExposition(text)
    .filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
    .reduce((n, s) => n + s.value, 0)
