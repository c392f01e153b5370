/**
 * Readers for the `events` of a scenario. Each event is a mapping with `at`
 * and exactly one action; `flap` is shorthand that expands into cut and heal
 * pairs here, so the runner only sees the basic actions.
 */
import { parseReference, parseRepository } from '../../protocol/reference.js'
import { child, invalid, isMapping, readBoolean, readDuration, readInteger, readMapping, readNodeIndices, readNodeSelector, readString, show, type FieldPath } from './values.js'
import type { EventAction, LinkParams, LinkRule, NodeSelector } from './types.js'

/** An event before sorting: its time, its action and where it came from. */
export interface RawEvent {
  atMs: number
  action: EventAction
  source: string
}

/** Actions an event may name, in the order the docs list them. */
export const ACTIONS = ['subscribe', 'unsubscribe', 'publish', 'pull', 'partition', 'cut', 'heal', 'flap', 'crash', 'restart', 'leave', 'join', 'link', 'reset'] as const

/** Most cut and heal pairs one `flap` may expand into. */
const MAX_FLAPS = 1_000

/** Checks `REPOSITORY:TAG`; with `allowRepository`, a repository alone (every tag) is accepted too. */
export function readRef (value: unknown, at: FieldPath, allowRepository = false): string {
  const text = readString(value, at, 'demo/httpd:stable')
  try {
    if (allowRepository && !text.includes(':')) {
      parseRepository(text)
    } else {
      parseReference(text, { allowDigest: false })
    }
  } catch (err: any) {
    throw invalid(at, err.message, allowRepository ? 'give REPOSITORY:TAG or REPOSITORY' : 'give REPOSITORY:TAG')
  }
  return text
}

/** Reads the optional link parameters of a `link` event, a `links` rule or the top-level `link`. */
export function readLinkParams (fields: Record<string, unknown>, at: FieldPath): Partial<LinkParams> {
  const params: Partial<LinkParams> = {}
  if (fields.latencyMs !== undefined) {
    params.latencyMs = readIntegerMs(fields.latencyMs, child(at, 'latencyMs'))
  }
  if (fields.jitterMs !== undefined) {
    params.jitterMs = readIntegerMs(fields.jitterMs, child(at, 'jitterMs'))
  }
  if (fields.bandwidthKbps !== undefined) {
    params.bandwidthKbps = readInteger(fields.bandwidthKbps, child(at, 'bandwidthKbps'), { min: 0, max: 100_000_000 })
  }
  return params
}

function readIntegerMs (value: unknown, at: FieldPath): number {
  return readInteger(value, at, { min: 0, max: 600_000 })
}

/** Reads a link rule: `from` and `to` default to every node. */
export function readLinkRule (value: unknown, at: FieldPath): LinkRule {
  const fields = readMapping(value, at, ['from', 'to', 'latencyMs', 'jitterMs', 'bandwidthKbps'], '{ from: 0-5, to: 6-11, latencyMs: 200 }')
  const params = readLinkParams(fields, at)
  if (Object.keys(params).length === 0) {
    throw invalid(at, 'the rule sets no parameter', 'give at least one of latencyMs, jitterMs, bandwidthKbps')
  }
  return {
    from: fields.from === undefined ? { kind: 'all' } : readFixedSelector(fields.from, child(at, 'from')),
    to: fields.to === undefined ? { kind: 'all' } : readFixedSelector(fields.to, child(at, 'to')),
    params
  }
}

/** Reads `all` or a list, but not `random`: cuts and link rules must name the same nodes on every run. */
function readFixedSelector (value: unknown, at: FieldPath): NodeSelector {
  const selector = readNodeSelector(value, at)
  if (selector.kind === 'random') {
    throw invalid(at, 'a random pick is not allowed here', 'list the nodes, such as [0, 1] or 0-5, or write all')
  }
  return selector
}

function readNodesField (value: unknown, at: FieldPath, action: string): NodeSelector {
  const fields = readMapping(value, at, ['nodes'], `{ nodes: [3] } or { nodes: all }`)
  if (fields.nodes === undefined) {
    throw invalid(child(at, 'nodes'), `${action} needs the nodes it applies to`, 'add nodes: [3], nodes: 0-5, nodes: all or nodes: { random: 2 }')
  }
  return readNodeSelector(fields.nodes, child(at, 'nodes'))
}

function readAction (kind: string, value: unknown, at: FieldPath): EventAction {
  switch (kind) {
    case 'subscribe':
    case 'unsubscribe': {
      const fields = readMapping(value, at, ['nodes', 'ref'], '{ nodes: all, ref: demo/httpd:stable }')
      return { kind, nodes: readNodeSelector(fields.nodes ?? 'all', child(at, 'nodes')), ref: readRef(fields.ref, child(at, 'ref'), true) }
    }
    case 'publish': {
      const fields = readMapping(value, at, ['node', 'image', 'ref'], '{ node: 0, image: httpd-v1, ref: demo/httpd:stable }')
      return {
        kind,
        node: readInteger(fields.node, child(at, 'node'), { min: 0, max: 100_000 }),
        image: readString(fields.image, child(at, 'image'), 'httpd-v1 (a name from images)'),
        ref: readRef(fields.ref, child(at, 'ref'))
      }
    }
    case 'pull': {
      const fields = readMapping(value, at, ['nodes', 'ref'], '{ nodes: [3], ref: demo/httpd:stable }')
      return { kind, nodes: readNodeSelector(fields.nodes ?? 'all', child(at, 'nodes')), ref: readRef(fields.ref, child(at, 'ref')) }
    }
    case 'partition':
      return { kind, groups: readGroups(value, at) }
    case 'cut': {
      const fields = readMapping(value, at, ['from', 'to', 'oneWay'], '{ from: [0], to: [1, 2] }')
      return {
        kind,
        from: readFixedSelector(fields.from, child(at, 'from')),
        to: readFixedSelector(fields.to, child(at, 'to')),
        oneWay: fields.oneWay === undefined ? false : readBoolean(fields.oneWay, child(at, 'oneWay'))
      }
    }
    case 'heal': {
      if (value === 'all') {
        return { kind }
      }
      const fields = readMapping(value, at, ['from', 'to'], 'all or { from: [0], to: [1, 2] }')
      return { kind, from: readFixedSelector(fields.from, child(at, 'from')), to: readFixedSelector(fields.to, child(at, 'to')) }
    }
    case 'crash':
    case 'restart':
    case 'leave':
    case 'reset':
      return { kind, nodes: readNodesField(value, at, kind) }
    case 'join': {
      const fields = readMapping(value, at, ['count', 'peers', 'subscribe'], '{ count: 2, subscribe: [demo/httpd:stable] }')
      const subscribe = fields.subscribe === undefined ? [] : readRefList(fields.subscribe, child(at, 'subscribe'))
      const action: EventAction = { kind, count: readInteger(fields.count ?? 1, child(at, 'count'), { min: 1, max: 1_000 }), subscribe }
      if (fields.peers !== undefined) {
        action.peers = readNodeSelector(fields.peers, child(at, 'peers'))
      }
      return action
    }
    case 'link':
      return { kind, rule: readLinkRule(value, at) }
    default:
      throw invalid(at, 'unknown action', `use one of: ${ACTIONS.join(', ')}`)
  }
}

function readRefList (value: unknown, at: FieldPath): string[] {
  const items = Array.isArray(value) ? value : [value]
  return items.map((item, i) => readRef(item, Array.isArray(value) ? child(at, i) : at, true))
}

function readGroups (value: unknown, at: FieldPath): number[][] {
  if (!Array.isArray(value) || value.length < 2) {
    throw invalid(at, `expected two or more node groups, got ${show(value)}`, 'write it as [[0, 1, 2], [3, 4, 5]] or [0-2, 3-5]')
  }

  const groups = value.map((group, i) => readNodeIndices(group, child(at, i)))
  const seen = new Map<number, number>()
  groups.forEach((group, i) => {
    for (const node of group) {
      const other = seen.get(node)
      if (other != null) {
        throw invalid(child(at, i), `node ${node} is also in group ${other}`, 'put each node in one group only')
      }
      seen.set(node, i)
    }
  })
  return groups
}

/** Expands `flap: { from, to, down, up, times, oneWay }` into `times` cut and heal pairs starting at `atMs`. */
function expandFlap (value: unknown, at: FieldPath, atMs: number, source: string): RawEvent[] {
  const fields = readMapping(value, at, ['from', 'to', 'down', 'up', 'times', 'oneWay'], '{ from: [0], to: [1], down: 2s, up: 3s, times: 5 }')
  const from = readFixedSelector(fields.from, child(at, 'from'))
  const to = readFixedSelector(fields.to, child(at, 'to'))
  const downMs = readDuration(fields.down, child(at, 'down'))
  const upMs = readDuration(fields.up, child(at, 'up'))
  const times = readInteger(fields.times, child(at, 'times'), { min: 1, max: MAX_FLAPS })
  const oneWay = fields.oneWay === undefined ? false : readBoolean(fields.oneWay, child(at, 'oneWay'))
  if (downMs === 0) {
    throw invalid(child(at, 'down'), 'a flap needs the link down for some time', 'give a duration above zero, such as 2s')
  }

  const events: RawEvent[] = []
  for (let i = 0; i < times; i++) {
    const cutAt = atMs + i * (downMs + upMs)
    const label = `${source} (flap ${i + 1} of ${times})`
    events.push({ atMs: cutAt, action: { kind: 'cut', from, to, oneWay }, source: label })
    events.push({ atMs: cutAt + downMs, action: { kind: 'heal', from, to }, source: label })
  }
  return events
}

/** Reads one item of `events`; returns more than one event for `flap`. */
export function readEvent (value: unknown, at: FieldPath): RawEvent[] {
  if (!isMapping(value)) {
    throw invalid(at, `expected a mapping, got ${show(value)}`, 'write it as { at: 1s, publish: { node: 0, image: httpd-v1, ref: demo/httpd:stable } }')
  }

  const atMs = readDuration(value.at, child(at, 'at'))
  const actions = Object.keys(value).filter(key => key !== 'at')
  if (actions.length !== 1) {
    throw invalid(at, actions.length === 0 ? 'the event names no action' : `the event names ${actions.length} actions (${actions.join(', ')})`, `give exactly one of: ${ACTIONS.join(', ')}, with one event per action`)
  }

  const kind = actions[0] as string
  const source = at.path
  if (kind === 'flap') {
    return expandFlap(value.flap, child(at, 'flap'), atMs, source)
  }
  return [{ atMs, action: readAction(kind, value[kind], child(at, kind)), source }]
}
