/**
 * Readers for the value types of a scenario file (durations, node lists,
 * numbers, mappings). Each one receives the field's path so that every error
 * names the field, the value it found and what to write instead.
 */
import { InvalidScenarioError } from '../errors.js'
import type { NodeSelector } from './types.js'

/** Location of a value in the scenario: the file and the field path, such as `events[2].crash.nodes`. */
export interface FieldPath {
  file: string
  path: string
}

export function child (at: FieldPath, key: string | number): FieldPath {
  if (typeof key === 'number') {
    return { file: at.file, path: `${at.path}[${key}]` }
  }
  return { file: at.file, path: at.path === '' ? key : `${at.path}.${key}` }
}

/** Builds the error for a field: `FILE: FIELD: PROBLEM; FIX`. */
export function invalid (at: FieldPath, problem: string, fix: string): InvalidScenarioError {
  const where = at.path === '' ? at.file : `${at.file}: ${at.path}`
  return new InvalidScenarioError(`${where}: ${problem}; ${fix}`)
}

/** Shows a value in an error message, shortened so that a pasted blob cannot flood the terminal. */
export function show (value: unknown): string {
  const text = value === undefined ? 'nothing' : JSON.stringify(value) ?? typeof value
  return text.length > 80 ? `${text.slice(0, 77)}...` : text
}

export function isMapping (value: unknown): value is Record<string, unknown> {
  return value != null && typeof value === 'object' && !Array.isArray(value)
}

/** Reads a mapping and rejects keys other than `allowed`, so a typo is reported instead of ignored. */
export function readMapping (value: unknown, at: FieldPath, allowed: readonly string[], example: string): Record<string, unknown> {
  if (!isMapping(value)) {
    throw invalid(at, `expected a mapping, got ${show(value)}`, `write it as ${example}`)
  }

  for (const key of Object.keys(value)) {
    if (!allowed.includes(key)) {
      throw invalid(child(at, key), 'unknown field', `use one of: ${allowed.join(', ')}`)
    }
  }
  return value
}

export function readString (value: unknown, at: FieldPath, example: string): string {
  if (typeof value !== 'string' || value.trim() === '') {
    throw invalid(at, `expected a non-empty string, got ${show(value)}`, `write it as ${example}`)
  }
  return value.trim()
}

export function readInteger (value: unknown, at: FieldPath, range: { min: number, max: number }): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < range.min || value > range.max) {
    throw invalid(at, `expected a whole number from ${range.min} to ${range.max}, got ${show(value)}`, `give a number in that range, such as ${range.min}`)
  }
  return value
}

export function readNumber (value: unknown, at: FieldPath, range: { min: number, max: number }): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < range.min || value > range.max) {
    throw invalid(at, `expected a number from ${range.min} to ${range.max}, got ${show(value)}`, `give a number in that range, such as ${range.min}`)
  }
  return value
}

export function readBoolean (value: unknown, at: FieldPath): boolean {
  if (typeof value !== 'boolean') {
    throw invalid(at, `expected true or false, got ${show(value)}`, 'write true or false without quotes')
  }
  return value
}

const DURATION = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h)$/
const UNIT_MS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 }

/** Maximum duration a scenario may name: a day, far beyond what one process can simulate. */
export const MAX_DURATION_MS = 24 * 3_600_000

/** Parses `500ms`, `7s`, `1.5m` or `2h` (a bare 0 is also accepted) into milliseconds. */
export function readDuration (value: unknown, at: FieldPath): number {
  if (value === 0) {
    return 0
  }

  const match = typeof value === 'string' ? DURATION.exec(value.trim()) : null
  if (match == null) {
    throw invalid(at, `expected a duration, got ${show(value)}`, 'write a number with a unit: ms, s, m or h, such as 500ms or 7s')
  }

  const ms = Math.round(Number(match[1]) * (UNIT_MS[match[2] as string] as number))
  if (ms > MAX_DURATION_MS) {
    throw invalid(at, `duration ${show(value)} is longer than 24h`, 'give a shorter duration')
  }
  return ms
}

const RANGE = /^(\d+)\s*-\s*(\d+)$/

/** Reads one node index, or a range `3-7` (both ends included), into `out`. */
function readNodeItem (value: unknown, at: FieldPath, out: number[]): void {
  if (typeof value === 'number' && Number.isInteger(value) && value >= 0) {
    out.push(value)
    return
  }

  const text = typeof value === 'string' ? value.trim() : ''
  const range = RANGE.exec(text)
  if (range != null) {
    const first = Number(range[1])
    const last = Number(range[2])
    if (first > last) {
      throw invalid(at, `range ${show(value)} runs backwards`, `write the lower index first, such as ${last}-${first}`)
    }
    for (let index = first; index <= last; index++) {
      out.push(index)
    }
    return
  }

  if (/^\d+$/.test(text)) {
    out.push(Number(text))
    return
  }

  throw invalid(at, `expected a node index or a range, got ${show(value)}`, 'write a number such as 3 or a range such as 0-5')
}

/** Reads an explicit list of node indices: `3`, `0-5`, or a sequence of indices and ranges. Duplicates are removed. */
export function readNodeIndices (value: unknown, at: FieldPath): number[] {
  const indices: number[] = []
  if (Array.isArray(value)) {
    if (value.length === 0) {
      throw invalid(at, 'the node list is empty', 'name at least one node, such as [0, 1] or [0-5]')
    }
    value.forEach((item, i) => { readNodeItem(item, child(at, i), indices) })
  } else {
    readNodeItem(value, at, indices)
  }
  return [...new Set(indices)].sort((a, b) => a - b)
}

/** Reads a node selector: `all`, `{ random: N, from: LIST }`, or an explicit list. */
export function readNodeSelector (value: unknown, at: FieldPath): NodeSelector {
  if (value === 'all') {
    return { kind: 'all' }
  }

  if (isMapping(value)) {
    const fields = readMapping(value, at, ['random', 'from'], '{ random: 3 } or { random: 3, from: 0-9 }')
    const count = readInteger(fields.random, child(at, 'random'), { min: 1, max: 100_000 })
    const from = fields.from === undefined ? undefined : readNodeIndices(fields.from, child(at, 'from'))
    if (from != null && count > from.length) {
      throw invalid(child(at, 'random'), `cannot pick ${count} of the ${from.length} nodes in "from"`, `pick at most ${from.length}`)
    }
    return from == null ? { kind: 'random', count } : { kind: 'random', count, from }
  }

  return { kind: 'list', indices: readNodeIndices(value, at) }
}
