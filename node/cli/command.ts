/** What every CLI command provides, and helpers they share. */
import { parseArgs, type ParseArgsConfig } from 'node:util'

export type OptionSpec = NonNullable<ParseArgsConfig['options']>

export interface Command {
  name: string
  /** One line for `kilomesh --help`. */
  summary: string
  /** Full `--help` text: usage line, description and options. */
  help: string
  options: OptionSpec
  /** Number of positional arguments the command takes: [min, max]. */
  positionals: [number, number]
  run: (values: Record<string, any>, positionals: string[]) => Promise<number>
}

/** A command line the user must fix; exits with status 2 and points at --help. */
export class UsageError extends Error {
  static override readonly name = 'UsageError'
  override readonly name = 'UsageError'
}

/** Options every command accepts. */
export const COMMON_OPTIONS: OptionSpec = {
  dir: { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' }
}

/** Help lines of the common options. */
export const COMMON_HELP = `  --dir DIR    data directory (default: $KILOMESH_DIR, else ~/.kilomesh)
  --json       print machine-readable JSON instead of text
  -h, --help   show this help`

/** Parses a command's arguments strictly, turning parse errors into usage errors. */
export function parseCommandArgs (command: Command, args: string[]): { values: Record<string, any>, positionals: string[] } {
  let parsed
  try {
    parsed = parseArgs({ args, options: { ...COMMON_OPTIONS, ...command.options }, allowPositionals: true, strict: true })
  } catch (err: any) {
    throw new UsageError(`${err.message as string}`)
  }

  const [min, max] = command.positionals
  if (parsed.values.help !== true && (parsed.positionals.length < min || parsed.positionals.length > max)) {
    const expected = min === max ? `${min}` : `${min} to ${max}`
    throw new UsageError(`"kilomesh ${command.name}" takes ${expected} argument(s), got ${parsed.positionals.length}`)
  }
  return { values: parsed.values, positionals: parsed.positionals }
}

/** Prints rows as aligned columns with a header. */
export function printTable (headers: string[], rows: string[][]): void {
  const widths = headers.map((header, i) => Math.max(header.length, ...rows.map(row => (row[i] ?? '').length)))
  const format = (cells: string[]): string => cells.map((cell, i) => i === cells.length - 1 ? cell : cell.padEnd(widths[i] ?? 0)).join('  ')
  console.log(format(headers))
  for (const row of rows) {
    console.log(format(row))
  }
}

/** Formats a byte count with binary units, as `ls -h` does. */
export function formatBytes (bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB']
  let value = bytes
  let unit = 0
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024
    unit++
  }
  return unit === 0 ? `${bytes} B` : `${value.toFixed(1)} ${units[unit]}`
}

/** Shortens a digest for tables: the algorithm and the first 12 hex characters. */
export function shortDigest (digest: string): string {
  return digest.slice(0, 'sha256:'.length + 12)
}
