import { MultiBar, Presets } from "cli-progress"
import type { SingleBar } from "cli-progress"
import type { CliIo } from "./io.js"

// apart from io.ts, which every command loads: only the long commands draw bars (cli-progress)

export interface Progress {
  /** Sets the bar for `label` to `done` of `total` (creating it on first call). */
  readonly update: (label: string, done: number, total: number) => void
  readonly stop: () => void
}

/** Progress bars on stderr when it is a terminal and the output is not --json; otherwise silent. */
export const makeProgress = (io: CliIo, enabled: boolean): Progress => {
  if (!enabled || !io.stderrIsTTY) return { update: () => {}, stop: () => {} }
  const multi = new MultiBar({ stream: process.stderr, format: "{label} [{bar}] {value}/{total} {rate}", hideCursor: true, clearOnComplete: false }, Presets.shades_classic)
  const bars = new Map<string, { readonly bar: SingleBar; readonly startedAt: number }>()
  return {
    update: (label, done, total) => {
      let b = bars.get(label)
      if (!b) {
        b = { bar: multi.create(total, 0, { label: label.padEnd(8), rate: "" }), startedAt: performance.now() }
        bars.set(label, b)
      }
      // how fast this phase goes, per second of its own (items: records, events, partitions...)
      const secs = (performance.now() - b.startedAt) / 1000
      b.bar.setTotal(total)
      b.bar.update(done, { rate: secs > 0.2 && done > 0 ? `${Math.round(done / secs).toLocaleString("en-US")}/s` : "" })
    },
    stop: () => multi.stop()
  }
}
