/**
 * The settings of subscriptions in config.json: `subscriptions` (a list of
 * "REPOSITORY:TAG" or "REPOSITORY", the latter meaning every tag),
 * `holds` (tags held on an older version by `kilomesh rollback --local`) and
 * `maxStorageBytes` (the storage quota). It imports nothing from libp2p, so
 * the CLI can edit these settings while no agent runs.
 */
import { loadConfig, saveConfig, type AgentConfig } from '../config/config.js'
import { InvalidConfigError } from '../config/errors.js'
import { parseDigest, type OciDigest } from '../../protocol/digest.js'
import { InvalidReferenceError } from '../../protocol/errors.js'
import { parseRepository, parseTag } from '../../protocol/reference.js'
import type { Hlc } from '../../protocol/hlc.js'
import type { SignedTagRecord } from '../../protocol/tag-record.js'
import type { TagVersion } from '../store/pins.js'

/** A subscription to one tag, or to every tag of a repository when `tag` is undefined. */
export interface Subscription {
  repository: string
  tag?: string
}

/** A tag that `kilomesh rollback --local` keeps on an older version on this device. */
export interface LocalHold {
  repository: string
  tag: string
  /** Version this device stays on. */
  version: TagVersion
  /** The record rolled back from; a record newer than it ends the hold. */
  from: { digest: OciDigest, hlc: Hlc, publisher: string }
}

/** Parses "REPOSITORY:TAG" or "REPOSITORY"; a digest is rejected because a digest never changes. */
export function parseSubscription (value: string): Subscription {
  if (value.includes('@')) {
    throw new InvalidReferenceError(`invalid subscription ${JSON.stringify(value.slice(0, 140))}: a digest never gets new versions, so subscribe to REPOSITORY:TAG or REPOSITORY (for example "demo/httpd:stable" or "demo/httpd")`)
  }

  const colon = value.lastIndexOf(':')
  if (colon === -1 || colon < value.lastIndexOf('/')) {
    return { repository: parseRepository(value) }
  }

  return { repository: parseRepository(value.slice(0, colon)), tag: parseTag(value.slice(colon + 1)) }
}

/** Returns the version a record points at, or undefined for a tombstone. */
export function versionOf (signed: SignedTagRecord): TagVersion | undefined {
  const { record } = signed
  return record.deleted || record.digest == null ? undefined : { digest: record.digest, mediaType: record.mediaType, size: record.sizeBytes }
}

/** Splits a "REPOSITORY:TAG" key at its last colon. */
export function splitTagKey (key: string): { repository: string, tag: string } {
  const colon = key.lastIndexOf(':')
  return { repository: key.slice(0, colon), tag: key.slice(colon + 1) }
}

/** Formats a subscription back to "REPOSITORY:TAG" or "REPOSITORY". */
export function formatSubscription (subscription: Subscription): string {
  return subscription.tag == null ? subscription.repository : `${subscription.repository}:${subscription.tag}`
}

/** Returns true when the subscription takes new versions of `repository:tag`. */
export function subscriptionCovers (subscription: Subscription, repository: string, tag: string): boolean {
  return subscription.repository === repository && (subscription.tag == null || subscription.tag === tag)
}

// Decimal units are powers of 1000 and binary units powers of 1024, as in IEC 80000-13.
const SIZE_UNITS: Record<string, number> = {
  b: 1,
  kb: 1e3,
  mb: 1e6,
  gb: 1e9,
  tb: 1e12,
  kib: 2 ** 10,
  mib: 2 ** 20,
  gib: 2 ** 30,
  tib: 2 ** 40
}

const SIZE_HELP = 'give a number of bytes with an optional unit B, kB, MB, GB, TB (powers of 1000) or KiB, MiB, GiB, TiB (powers of 1024), for example 500MB, 2GiB or 1048576'

/** Parses a storage size such as "500MB", "2GiB", "1.5 GB" or "1048576" into whole bytes; `what` names the value in errors. */
export function parseStorageSize (value: unknown, what = 'storage size'): number {
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value) || value < 0) {
      throw new InvalidConfigError(`invalid ${what} ${value}: expected a whole number of bytes of at least 0`)
    }
    return value
  }

  const match = typeof value === 'string' ? /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(value) : null
  const multiplier = match == null ? undefined : SIZE_UNITS[(match[2] === '' ? 'b' : match[2] ?? '').toLowerCase()]
  if (match == null || multiplier == null) {
    throw new InvalidConfigError(`invalid ${what} ${JSON.stringify(value)}: ${SIZE_HELP}`)
  }

  const bytes = Math.floor(Number(match[1]) * multiplier)
  if (!Number.isSafeInteger(bytes)) {
    throw new InvalidConfigError(`invalid ${what} ${JSON.stringify(value)}: more than ${Number.MAX_SAFE_INTEGER} bytes`)
  }
  return bytes
}

/** Reads `subscriptions` from a loaded config.json; `path` names the file in errors. */
export function readSubscriptions (config: AgentConfig, path: string): Subscription[] {
  const value = config.subscriptions ?? []
  if (!Array.isArray(value)) {
    throw new InvalidConfigError(`"subscriptions" in ${path} must be an array of strings such as "demo/httpd:stable" or "demo/httpd"`)
  }

  return value.map((entry, i) => {
    if (typeof entry !== 'string') {
      throw new InvalidConfigError(`"subscriptions[${i}]" in ${path} must be a string such as "demo/httpd:stable", got ${JSON.stringify(entry)}`)
    }
    try {
      return parseSubscription(entry)
    } catch (err: any) {
      throw new InvalidConfigError(`"subscriptions[${i}]" in ${path}: ${err.message}`)
    }
  })
}

/** Reads `maxStorageBytes` from a loaded config.json; undefined means no quota. */
export function readMaxStorageBytes (config: AgentConfig, path: string): number | undefined {
  return config.maxStorageBytes == null ? undefined : parseStorageSize(config.maxStorageBytes, `"maxStorageBytes" in ${path}`)
}

/** Reads `holds` from a loaded config.json; `path` names the file in errors. */
export function readHolds (config: AgentConfig, path: string): LocalHold[] {
  const value = config.holds ?? []
  if (!Array.isArray(value)) {
    throw new InvalidConfigError(`"holds" in ${path} must be an array; remove the key to release every hold`)
  }

  return value.map((entry, i) => {
    try {
      return parseHold(entry)
    } catch (err: any) {
      throw new InvalidConfigError(`"holds[${i}]" in ${path} is invalid (${err.message}); remove the entry to release the hold`)
    }
  })
}

function parseHold (entry: any): LocalHold {
  const reference = typeof entry?.reference === 'string' ? parseSubscription(entry.reference) : undefined
  if (reference?.tag == null) {
    throw new Error('"reference" must be REPOSITORY:TAG')
  }

  const version: TagVersion = { digest: parseDigest(entry.digest), mediaType: String(entry.mediaType ?? ''), size: Number(entry.size) }
  const from = entry.rolledBackFrom
  const hlc = { wallMs: Number(from?.hlc?.wallMs), counter: Number(from?.hlc?.counter) }
  if (!Number.isSafeInteger(version.size) || !Number.isSafeInteger(hlc.wallMs) || !Number.isSafeInteger(hlc.counter) || typeof from?.publisher !== 'string') {
    throw new Error('expected "size", "rolledBackFrom.hlc.wallMs", "rolledBackFrom.hlc.counter" as integers and "rolledBackFrom.publisher" as a string')
  }

  return { repository: reference.repository, tag: reference.tag, version, from: { digest: parseDigest(from.digest), hlc, publisher: from.publisher } }
}

/** Formats a hold as its config.json entry. */
export function formatHold (hold: LocalHold): Record<string, unknown> {
  return {
    reference: `${hold.repository}:${hold.tag}`,
    digest: hold.version.digest,
    mediaType: hold.version.mediaType,
    size: hold.version.size,
    rolledBackFrom: { digest: hold.from.digest, hlc: { ...hold.from.hlc }, publisher: hold.from.publisher }
  }
}

// Pending rewrites per config path, so that two changes in one process never lose each other.
const configLocks = new Map<string, Promise<unknown>>()

/**
 * Reads config.json, lets `change` edit it, and writes it back atomically,
 * keeping every key `change` does not touch. Changes made by this process
 * run one at a time.
 */
export async function updateConfig<T> (path: string, change: (config: AgentConfig) => T): Promise<T> {
  const previous = configLocks.get(path) ?? Promise.resolve()
  const next = previous.catch(() => {}).then(async () => {
    const config = await loadConfig(path)
    const result = change(config)
    await saveConfig(path, config)
    return result
  })

  configLocks.set(path, next)
  try {
    return await next
  } finally {
    if (configLocks.get(path) === next) {
      configLocks.delete(path)
    }
  }
}

/**
 * Adds a subscription to config.json; returns false when it was already
 * there. Used by the agent and, while no agent runs, by the CLI.
 */
export async function addSubscriptionToConfig (path: string, subscription: Subscription): Promise<boolean> {
  const name = formatSubscription(subscription)
  return updateConfig(path, config => {
    const names = readSubscriptions(config, path).map(formatSubscription)
    if (names.includes(name)) {
      return false
    }
    config.subscriptions = [...names, name]
    return true
  })
}

/** Removes a subscription from config.json; returns false when it was not there. */
export async function removeSubscriptionFromConfig (path: string, subscription: Subscription): Promise<boolean> {
  const name = formatSubscription(subscription)
  return updateConfig(path, config => {
    const names = readSubscriptions(config, path).map(formatSubscription)
    if (!names.includes(name)) {
      return false
    }
    config.subscriptions = names.filter(other => other !== name)
    return true
  })
}

/** Returns the error for unsubscribing `name` when it is not in the list, naming the subscriptions there are. */
export function notSubscribedError (name: string, subscriptions: Subscription[]): InvalidReferenceError {
  const names = subscriptions.map(formatSubscription)
  const covering = subscriptions.find(subscription => subscription.tag == null && name.startsWith(`${subscription.repository}:`))
  const hint = covering != null
    ? `it is covered by the subscription to every tag of ${covering.repository}; unsubscribe ${covering.repository} instead`
    : names.length === 0 ? 'there are no subscriptions' : `the subscriptions are ${names.join(', ')}`
  return new InvalidReferenceError(`${name} is not subscribed: ${hint}`)
}
