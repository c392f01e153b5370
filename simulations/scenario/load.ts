/**
 * Loads a scenario YAML file and validates every field. The result is a
 * `Scenario` with defaults filled in, events sorted by time (events at the
 * same time keep their order in the file) and image paths made absolute.
 */
import { readFile, stat } from 'node:fs/promises'
import { dirname, isAbsolute, resolve } from 'node:path'
import { parse as parseYaml } from 'yaml'
import { DEFAULT_RUN_SETTINGS, MAX_NODES } from '../constants.js'
import { InvalidScenarioError } from '../errors.js'
import { readEvent, readLinkParams, readLinkRule, readRef, type RawEvent } from './events.js'
import { checkFleet, checkLinkRules } from './fleet-check.js'
import { child, invalid, isMapping, readBoolean, readDuration, readInteger, readMapping, readNodeIndices, readString, show, type FieldPath } from './values.js'
import type { AgentSettings, Expectation, ExpectationCheck, RunSettings, Scenario, ScenarioTrust, Topology } from './types.js'

const TOP_LEVEL = ['name', 'description', 'seed', 'nodes', 'transport', 'topology', 'link', 'links', 'images', 'trust', 'agent', 'events', 'expect', 'run'] as const
const TOPOLOGIES = ['full', 'line', 'ring', 'star', 'random', 'clusters']
const TRUST_MODES = ['any', 'first-use', 'explicit']

/** Options of loading; relative image paths are looked up in the scenario's folder first, then in `cwd`. */
export interface LoadOptions {
  cwd?: string
}

/** Reads and validates a scenario file. */
export async function loadScenario (path: string, options: LoadOptions = {}): Promise<Scenario> {
  const file = resolve(options.cwd ?? process.cwd(), path)
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (err: any) {
    throw new InvalidScenarioError(`cannot read scenario ${file}: ${err.code === 'ENOENT' ? 'no such file' : err.message}; check the path`)
  }
  return parseScenario(text, { file, baseDirs: [dirname(file), resolve(options.cwd ?? process.cwd())] })
}

/** Validates scenario text; `baseDirs` are tried in order for relative image paths. */
export async function parseScenario (text: string, options: { file: string, baseDirs: string[] }): Promise<Scenario> {
  let document: unknown
  try {
    document = parseYaml(text)
  } catch (err: any) {
    throw new InvalidScenarioError(`${options.file}: not valid YAML: ${err.message}; fix the syntax at that line`)
  }

  const root: FieldPath = { file: options.file, path: '' }
  const fields = readMapping(document, root, TOP_LEVEL, 'a mapping with name, nodes, events and expect')
  const at = (key: string): FieldPath => child(root, key)

  const nodes = readInteger(fields.nodes, at('nodes'), { min: 1, max: MAX_NODES })
  const images = await readImages(fields.images, at('images'), options.baseDirs)

  const raw: RawEvent[] = []
  const eventList = fields.events ?? []
  if (!Array.isArray(eventList)) {
    throw invalid(at('events'), `expected a sequence, got ${show(eventList)}`, 'write one "- { at: 1s, ... }" line per event')
  }
  eventList.forEach((value, i) => raw.push(...readEvent(value, child(at('events'), i))))
  // Array.prototype.sort is stable, so events at the same time keep their file order.
  const events = raw.sort((a, b) => a.atMs - b.atMs).map((event, index) => ({ ...event, index }))

  const expectations = readExpectations(fields.expect ?? [], at('expect'))
  const maxNodes = checkFleet(events, expectations, nodes, images, options.file)
  if (maxNodes > MAX_NODES) {
    throw invalid(at('events'), `the join events grow the fleet to ${maxNodes} nodes, above the limit of ${MAX_NODES}`, `join at most ${MAX_NODES - nodes} nodes in all`)
  }
  const links = readList(fields.links, at('links')).map((value, i) => readLinkRule(value, child(at('links'), i)))
  checkLinkRules(links, maxNodes, options.file)

  return {
    name: readName(fields.name, at('name')),
    description: fields.description === undefined ? '' : readString(fields.description, at('description'), 'a sentence saying what the run shows'),
    file: options.file,
    seed: fields.seed === undefined ? 1 : readInteger(fields.seed, at('seed'), { min: 0, max: 2 ** 32 - 1 }),
    nodes,
    transport: readTransport(fields.transport, at('transport')),
    topology: readTopology(fields.topology, at('topology'), nodes),
    link: { latencyMs: 0, jitterMs: 0, bandwidthKbps: 0, ...(fields.link === undefined ? {} : readLinkParams(readMapping(fields.link, at('link'), ['latencyMs', 'jitterMs', 'bandwidthKbps'], '{ latencyMs: 20, jitterMs: 5, bandwidthKbps: 20000 }'), at('link'))) },
    links,
    images,
    trust: readTrust(fields.trust, at('trust'), nodes),
    agent: readAgentSettings(fields.agent, at('agent')),
    events,
    expectations,
    run: readRunSettings(fields.run, at('run')),
    maxNodes
  }
}

const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/

/** Reads the scenario name, which also names the default report folder. */
function readName (value: unknown, at: FieldPath): string {
  const name = readString(value, at, 'split-and-heal')
  if (!NAME_PATTERN.test(name)) {
    throw invalid(at, `name ${show(name)} has characters that do not fit in a folder name, or more than 64`, 'use letters, digits, ".", "_" and "-", such as split-and-heal')
  }
  return name
}

function readList (value: unknown, at: FieldPath): unknown[] {
  if (value === undefined) {
    return []
  }
  if (!Array.isArray(value)) {
    throw invalid(at, `expected a sequence, got ${show(value)}`, 'write one "- ..." line per item')
  }
  return value
}

function readTransport (value: unknown, at: FieldPath): 'memory' | 'tcp' {
  if (value === undefined || value === 'memory' || value === 'tcp') {
    return value ?? 'memory'
  }
  throw invalid(at, `unknown transport ${show(value)}`, 'use memory (simulated links) or tcp (real loopback TCP, for overhead comparisons)')
}

function readTopology (value: unknown, at: FieldPath, nodes: number): Topology {
  if (value === undefined) {
    return { kind: 'full' }
  }
  const fields = readMapping(value, at, ['kind', 'degree', 'hub', 'count', 'bridges'], '{ kind: random, degree: 3 }')
  const kind = fields.kind
  if (typeof kind !== 'string' || !TOPOLOGIES.includes(kind)) {
    throw invalid(child(at, 'kind'), `unknown topology ${show(kind)}`, `use one of: ${TOPOLOGIES.join(', ')}`)
  }

  const allowed: Record<string, string[]> = { full: [], line: [], ring: [], star: ['hub'], random: ['degree'], clusters: ['count', 'degree', 'bridges'] }
  for (const key of Object.keys(fields)) {
    if (key !== 'kind' && !(allowed[kind] ?? []).includes(key)) {
      throw invalid(child(at, key), `topology ${kind} takes no ${key}`, (allowed[kind] ?? []).length === 0 ? 'remove it' : `use only: ${(allowed[kind] ?? []).join(', ')}`)
    }
  }

  switch (kind) {
    case 'star':
      return { kind, hub: fields.hub === undefined ? 0 : readInteger(fields.hub, child(at, 'hub'), { min: 0, max: nodes - 1 }) }
    case 'random':
      return { kind, degree: readInteger(fields.degree, child(at, 'degree'), { min: 1, max: Math.max(1, nodes - 1) }) }
    case 'clusters': {
      const count = readInteger(fields.count, child(at, 'count'), { min: 1, max: nodes })
      const clusterSize = Math.floor(nodes / count)
      const topology: Topology = { kind, count, bridges: fields.bridges === undefined ? 1 : readInteger(fields.bridges, child(at, 'bridges'), { min: 1, max: Math.max(1, clusterSize) }) }
      if (fields.degree !== undefined) {
        topology.degree = readInteger(fields.degree, child(at, 'degree'), { min: 1, max: Math.max(1, clusterSize - 1) })
      }
      return topology
    }
    default:
      return { kind: kind as 'full' | 'line' | 'ring' }
  }
}

async function exists (path: string): Promise<boolean> {
  try {
    await stat(path)
    return true
  } catch {
    return false
  }
}

/**
 * Makes an image source absolute. A source may end in `:TAG` (or `:REF` for a
 * docker archive), so each prefix that ends before a colon is tried as the
 * path, in every base folder, the whole string first.
 */
async function resolveSource (source: string, baseDirs: string[]): Promise<string | undefined> {
  const splits = [source.length]
  for (let i = source.indexOf(':'); i > 0; i = source.indexOf(':', i + 1)) {
    splits.push(i)
  }

  for (const base of isAbsolute(source) ? ['/'] : baseDirs) {
    for (const split of splits) {
      const path = resolve(base, source.slice(0, split))
      if (await exists(path)) {
        return `${path}${source.slice(split)}`
      }
    }
  }
  return undefined
}

async function readImages (value: unknown, at: FieldPath, baseDirs: string[]): Promise<Record<string, string>> {
  if (value === undefined) {
    return {}
  }
  if (!isMapping(value)) {
    throw invalid(at, `expected a mapping of names to image sources, got ${show(value)}`, 'write it as images: { httpd-v1: test/fixtures/micro-httpd:v1 }')
  }

  const images: Record<string, string> = {}
  for (const [name, source] of Object.entries(value)) {
    const text = readString(source, child(at, name), 'test/fixtures/micro-httpd:v1')
    const resolved = await resolveSource(text, baseDirs)
    if (resolved == null) {
      throw invalid(child(at, name), `image source ${show(text)} was not found in ${baseDirs.join(' or ')}`, 'give the path of an OCI image layout folder (DIR or DIR:TAG) or an archive (FILE.tar or FILE.tar:TAG), relative to the scenario file or the working directory')
    }
    images[name] = resolved
  }
  return images
}

function readTrust (value: unknown, at: FieldPath, nodes: number): ScenarioTrust {
  if (value === undefined) {
    return { mode: 'any', publishers: [] }
  }
  const fields = readMapping(value, at, ['mode', 'publishers'], '{ mode: first-use } or { mode: explicit, publishers: [0] }')
  const mode = fields.mode ?? 'any'
  if (typeof mode !== 'string' || !TRUST_MODES.includes(mode)) {
    throw invalid(child(at, 'mode'), `unknown trust mode ${show(mode)}`, `use one of: ${TRUST_MODES.join(', ')}`)
  }

  const publishers = fields.publishers === undefined ? [] : readNodeIndices(fields.publishers, child(at, 'publishers'))
  const bad = publishers.find(index => index >= nodes)
  if (bad !== undefined) {
    throw invalid(child(at, 'publishers'), `node ${bad} is not one of the ${nodes} initial nodes`, `use indices from 0 to ${nodes - 1}`)
  }
  return { mode: mode as ScenarioTrust['mode'], publishers }
}

function readAgentSettings (value: unknown, at: FieldPath): AgentSettings {
  if (value === undefined) {
    return {}
  }
  const fields = readMapping(value, at, ['dht', 'minConnections'], '{ dht: true, minConnections: 4 }')
  const settings: AgentSettings = {}
  if (fields.dht !== undefined) {
    settings.dht = readBoolean(fields.dht, child(at, 'dht'))
  }
  if (fields.minConnections !== undefined) {
    settings.minConnections = readInteger(fields.minConnections, child(at, 'minConnections'), { min: 0, max: 1_000 })
  }
  return settings
}

function readCheck (kind: string, value: unknown, at: FieldPath): ExpectationCheck {
  if (kind === 'converged') {
    const fields = readMapping(value, at, ['ref'], '{ ref: demo/httpd:stable }')
    return { kind, ref: readRef(fields.ref, child(at, 'ref')) }
  }

  const keys = kind === 'each' ? ['nodes', 'ref', 'image', 'pulled'] : ['ref', 'image', 'pulled']
  const fields = readMapping(value, at, keys, '{ ref: demo/httpd:stable, image: httpd-v2, pulled: true }')
  const ref = readRef(fields.ref, child(at, 'ref'))
  const image = readString(fields.image, child(at, 'image'), 'httpd-v2 (a name from images)')
  const pulled = fields.pulled === undefined ? true : readBoolean(fields.pulled, child(at, 'pulled'))
  if (kind === 'each') {
    if (fields.nodes === undefined) {
      throw invalid(child(at, 'nodes'), 'each needs the nodes it checks', 'add nodes: [0, 1] or nodes: 0-5, or use all for every running node')
    }
    return { kind, nodes: readNodeIndices(fields.nodes, child(at, 'nodes')), ref, image, pulled }
  }
  return { kind: 'all', ref, image, pulled }
}

function readExpectations (value: unknown, at: FieldPath): Expectation[] {
  return readList(value, at).map((item, index) => {
    const itemAt = child(at, index)
    const fields = readMapping(item, itemAt, ['by', 'all', 'each', 'converged'], '{ by: 30s, all: { ref: demo/httpd:stable, image: httpd-v2, pulled: true } }')
    const checks = Object.keys(fields).filter(key => key !== 'by')
    if (checks.length !== 1) {
      throw invalid(itemAt, checks.length === 0 ? 'the expectation names no check' : `the expectation names ${checks.length} checks`, 'give exactly one of: all, each, converged, with one expectation per check')
    }
    const kind = checks[0] as string
    return { index, byMs: readDuration(fields.by, child(itemAt, 'by')), check: readCheck(kind, fields[kind], child(itemAt, kind)) }
  })
}

function readRunSettings (value: unknown, at: FieldPath): RunSettings {
  if (value === undefined) {
    return { ...DEFAULT_RUN_SETTINGS }
  }
  const fields = readMapping(value, at, ['startBatchSize', 'sampleInterval', 'setupTimeout', 'stopTimeout', 'minDuration'], '{ startBatchSize: 5, sampleInterval: 250ms }')
  return {
    startBatchSize: fields.startBatchSize === undefined ? DEFAULT_RUN_SETTINGS.startBatchSize : readInteger(fields.startBatchSize, child(at, 'startBatchSize'), { min: 1, max: 100 }),
    sampleIntervalMs: fields.sampleInterval === undefined ? DEFAULT_RUN_SETTINGS.sampleIntervalMs : readBoundedDuration(fields.sampleInterval, child(at, 'sampleInterval'), 20, 60_000),
    setupTimeoutMs: fields.setupTimeout === undefined ? DEFAULT_RUN_SETTINGS.setupTimeoutMs : readBoundedDuration(fields.setupTimeout, child(at, 'setupTimeout'), 1_000, 3_600_000),
    stopTimeoutMs: fields.stopTimeout === undefined ? DEFAULT_RUN_SETTINGS.stopTimeoutMs : readBoundedDuration(fields.stopTimeout, child(at, 'stopTimeout'), 1_000, 600_000),
    minDurationMs: fields.minDuration === undefined ? DEFAULT_RUN_SETTINGS.minDurationMs : readDuration(fields.minDuration, child(at, 'minDuration'))
  }
}

function readBoundedDuration (value: unknown, at: FieldPath, minMs: number, maxMs: number): number {
  const ms = readDuration(value, at)
  if (ms < minMs || ms > maxMs) {
    throw invalid(at, `${show(value)} is outside ${minMs} ms to ${maxMs} ms`, 'give a duration in that range')
  }
  return ms
}
