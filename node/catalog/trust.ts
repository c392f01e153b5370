/**
 * Which publishers the catalog accepts for which repositories.
 *
 * Every record is signed, so the policy only decides whose signature counts.
 * The order of the checks:
 * 1. The local peer may publish to any repository.
 * 2. An explicit entry (peer ID plus repository pattern) allows that peer.
 * 3. Mode `any` allows every signed record, for meshes closed by a private
 *    network key.
 * 4. Mode `first-use` (the default): a repository that no explicit entry
 *    covers belongs to the first publisher the catalog accepted for it, and
 *    only that owner may publish to it afterwards. A repository that an
 *    explicit entry covers is closed to everyone the entries do not name.
 * 5. Mode `explicit`: everything else is rejected.
 *
 * So under the default an outsider cannot replace a tag that someone else
 * published first, though it can claim a repository that no one has used yet.
 */
import { peerIdFromString } from '@libp2p/peer-id'
import { InvalidTrustEntryError } from './errors.js'

/** Treatment of records from publishers that no entry names. */
export type TrustMode = 'first-use' | 'explicit' | 'any'

/** Permission for one publisher to publish to the repositories that `repository` matches. */
export interface TrustEntry {
  /** Publisher peer ID in its string form. */
  peerId: string
  /** Repository name or pattern, where `*` matches any run of characters including `/`. */
  repository: string
}

/** The serialisable form of a policy, as stored in the `trust` section of the agent's config.json. */
export interface TrustConfig {
  /** @default 'first-use' */
  mode?: TrustMode
  entries?: TrustEntry[]
}

/** The outcome of a policy check. */
export interface TrustDecision {
  allowed: boolean
  /** Reason the record was allowed or rejected, for logs and results. */
  reason: string
  /** True when accepting the record makes its publisher the first-use owner of the repository. */
  claimsOwnership: boolean
}

const PATTERN_CHARACTERS = /^[a-z0-9._\-/*]+$/
const TRUST_MODES: readonly TrustMode[] = ['first-use', 'explicit', 'any']

/**
 * Checks the `trust` section of config.json and returns it typed, or throws
 * InvalidTrustEntryError naming the bad part. A section that a typo left
 * out of effect (an unknown key, a mode in the wrong case) would silently
 * leave the device in first-use mode, so unknown keys are rejected too.
 */
export function parseTrustConfig (value: unknown): TrustConfig {
  if (value == null || typeof value !== 'object' || Array.isArray(value)) {
    throw new InvalidTrustEntryError(`"trust" must be an object such as {"mode": "explicit", "entries": [{"peerId": "12D3...", "repository": "demo/*"}]}, got ${JSON.stringify(value)?.slice(0, 100)}`)
  }

  const section = value as Record<string, unknown>
  const unknown = Object.keys(section).filter(key => key !== 'mode' && key !== 'entries')
  if (unknown.length > 0) {
    throw new InvalidTrustEntryError(`unknown key(s) ${unknown.map(key => JSON.stringify(key)).join(', ')} in "trust": it takes "mode" and "entries"`)
  }
  if (section.mode != null && !TRUST_MODES.includes(section.mode as TrustMode)) {
    throw new InvalidTrustEntryError(`invalid trust mode ${JSON.stringify(section.mode)}: use one of ${TRUST_MODES.join(', ')}`)
  }
  if (section.entries != null && !Array.isArray(section.entries)) {
    throw new InvalidTrustEntryError(`"trust.entries" must be an array of {"peerId", "repository"} objects, got ${JSON.stringify(section.entries).slice(0, 100)}`)
  }

  const entries = (section.entries as unknown[] | undefined ?? []).map((entry, index) => {
    const fields = entry as Record<string, unknown> | null
    if (fields == null || typeof fields !== 'object' || typeof fields.peerId !== 'string' || (fields.repository != null && typeof fields.repository !== 'string')) {
      throw new InvalidTrustEntryError(`"trust.entries[${index}]" must be an object with a "peerId" string and an optional "repository" pattern string, got ${JSON.stringify(entry)?.slice(0, 100)}`)
    }
    return { peerId: parsePeerId(fields.peerId), repository: parsePattern(fields.repository ?? '*') }
  })

  return { mode: section.mode as TrustMode | undefined, entries }
}

/** Checks a peer ID string and returns it, or throws an error that names it. */
function parsePeerId (peerId: string): string {
  try {
    return peerIdFromString(peerId).toString()
  } catch (err) {
    throw new InvalidTrustEntryError(`invalid publisher peer ID ${JSON.stringify(peerId.slice(0, 100))} in trust entry: ${(err as Error).message}; give the peer ID that "kilomesh status" prints on the publishing device`)
  }
}

/** Checks a repository pattern and returns it, or throws an error that names it. */
function parsePattern (pattern: string): string {
  if (pattern.length === 0 || pattern.length > 255 || !PATTERN_CHARACTERS.test(pattern)) {
    throw new InvalidTrustEntryError(`invalid repository pattern ${JSON.stringify(pattern.slice(0, 100))} in trust entry: use a repository name in which "*" matches any characters, for example "demo/*" or "*"`)
  }

  return pattern
}

function patternToRegExp (pattern: string): RegExp {
  const escaped = pattern.split('*').map(part => part.replace(/[.\-/]/g, character => `\\${character}`))
  return new RegExp(`^${escaped.join('.*')}$`)
}

/** Returns true when `repository` matches the trust pattern `pattern`. */
export function matchesPattern (pattern: string, repository: string): boolean {
  return patternToRegExp(pattern).test(repository)
}

/** A trust policy plus the first-use owners it has learned. */
export class TrustPolicy {
  readonly mode: TrustMode
  private readonly localPeerId: string | undefined
  private readonly trustEntries: Array<TrustEntry & { matcher: RegExp }>
  private readonly owners = new Map<string, string>()

  /** `config` is the trust section of config.json, checked with parseTrustConfig. */
  constructor (init: { localPeerId?: string, config?: unknown } = {}) {
    const config = init.config == null ? {} : parseTrustConfig(init.config)
    this.mode = config.mode ?? 'first-use'
    this.localPeerId = init.localPeerId
    this.trustEntries = []
    for (const entry of config.entries ?? []) {
      this.add(entry.peerId, entry.repository)
    }
  }

  /** Allows `peerId` to publish to repositories matching `pattern`; adding an existing entry changes nothing. */
  add (peerId: string, pattern = '*'): TrustEntry {
    const entry = { peerId: parsePeerId(peerId), repository: parsePattern(pattern) }
    if (!this.trustEntries.some(existing => existing.peerId === entry.peerId && existing.repository === entry.repository)) {
      this.trustEntries.push({ ...entry, matcher: patternToRegExp(entry.repository) })
    }

    return entry
  }

  /** Removes the entries of `peerId`, only the one for `pattern` when given; returns how many were removed. */
  remove (peerId: string, pattern?: string): number {
    const before = this.trustEntries.length
    for (let index = this.trustEntries.length - 1; index >= 0; index--) {
      const entry = this.trustEntries[index] as TrustEntry
      if (entry.peerId === peerId && (pattern == null || entry.repository === pattern)) {
        this.trustEntries.splice(index, 1)
      }
    }

    return before - this.trustEntries.length
  }

  /** Returns the explicit entries in the order they were added. */
  entries (): TrustEntry[] {
    return this.trustEntries.map(({ peerId, repository }) => ({ peerId, repository }))
  }

  /** Returns the first-use owner of a repository, if one was recorded. */
  ownerOf (repository: string): string | undefined {
    return this.owners.get(repository)
  }

  /** Records the first-use owner of a repository; the catalog calls this after persisting it. */
  setOwner (repository: string, peerId: string): void {
    this.owners.set(repository, peerId)
  }

  /** Returns the first-use owners as repository and peer ID pairs. */
  listOwners (): Array<{ repository: string, peerId: string }> {
    return [...this.owners].map(([repository, peerId]) => ({ repository, peerId }))
  }

  /** Decides whether a record that `publisher` signed for `repository` is accepted. */
  check (publisher: string, repository: string): TrustDecision {
    const owner = this.owners.get(repository)
    const unowned = owner == null && this.mode === 'first-use'

    if (publisher === this.localPeerId) {
      return { allowed: true, reason: 'published by the local peer', claimsOwnership: unowned && !this.coveredByEntries(repository) }
    }

    if (this.trustEntries.some(entry => entry.peerId === publisher && entry.matcher.test(repository))) {
      return { allowed: true, reason: 'publisher has a trust entry for this repository', claimsOwnership: false }
    }

    if (this.mode === 'any') {
      return { allowed: true, reason: 'trust mode "any" accepts every signed record', claimsOwnership: false }
    }

    if (this.mode === 'explicit') {
      return { allowed: false, reason: `publisher ${publisher} has no trust entry for repository ${repository} and the trust mode is "explicit"; run \`kilomesh trust add ${publisher} --repository ${repository}\` to accept it`, claimsOwnership: false }
    }

    if (this.coveredByEntries(repository)) {
      return { allowed: false, reason: `repository ${repository} is restricted to the publishers of its trust entries and ${publisher} is not one of them; run \`kilomesh trust add ${publisher} --repository ${repository}\` to accept it`, claimsOwnership: false }
    }

    if (owner == null) {
      return { allowed: true, reason: 'first publisher of this repository', claimsOwnership: true }
    }

    if (owner === publisher) {
      return { allowed: true, reason: 'first-use owner of this repository', claimsOwnership: false }
    }

    return { allowed: false, reason: `repository ${repository} belongs to its first publisher ${owner}, not ${publisher}; run \`kilomesh trust add ${publisher} --repository ${repository}\` to accept it`, claimsOwnership: false }
  }

  /** Returns the serialisable form, for the `trust` section of config.json. */
  toJSON (): TrustConfig {
    return { mode: this.mode, entries: this.entries() }
  }

  private coveredByEntries (repository: string): boolean {
    return this.trustEntries.some(entry => entry.matcher.test(repository))
  }
}

/**
 * Returns a warning when this agent's policy would reject `publisher` for
 * `repository`, ignoring its own exemption as the local peer. Other agents
 * with the same policy then reject what this agent publishes there.
 */
export function rejectedElsewhere (trust: TrustPolicy, publisher: string, repository: string): string | undefined {
  if (trust.mode === 'any') {
    return undefined
  }

  const covering = trust.entries().filter(entry => matchesPattern(entry.repository, repository))
  if (covering.some(entry => entry.peerId === publisher)) {
    return undefined
  }

  const owner = trust.ownerOf(repository)
  if (trust.mode === 'first-use' && covering.length === 0 && (owner == null || owner === publisher)) {
    return undefined
  }

  const reason = covering.length > 0
    ? `trust entries restrict ${repository} to other publishers`
    : trust.mode === 'explicit' ? 'the trust mode is "explicit" and no entry names this agent' : `${repository} belongs to its first publisher ${owner ?? 'unknown'}`
  return `${reason}, so agents with the same policy reject this record unless they run "kilomesh trust add ${publisher} --repository ${repository}"`
}
