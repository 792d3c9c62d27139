/** Exit codes scripts can rely on (docs/cli.md). Apart from runtime.ts so `--version` loads nothing else. */
export const EXIT_OK = 0
/** The command failed, or found a difference (reconciliation, replay divergence). */
export const EXIT_FAILURE = 1
/** The command line was wrong: unknown command or option, missing or malformed argument. */
export const EXIT_USAGE = 2
