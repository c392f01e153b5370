/**
 * Tracks, for every node and every watched tag, which manifest the node's
 * catalog resolves the tag to and whether the node holds every blob of that
 * image (for the local platform, as subscriptions pull it). Catalog changes
 * and finished subscription pulls trigger a check at once; nodes that know a
 * tag but lack some of its blobs are checked again on every tick, because a
 * pull started by hand or a restart does not announce itself.
 */
import { logger } from '@libp2p/logger'
import { listImageBlobs } from '../../node/image/image-graph.js'
import { localPlatform } from '../../node/image/platform.js'
import { BlobNotFoundError } from '../../node/store/errors.js'
import { parseReference } from '../../protocol/reference.js'
import type { SimNode } from './sim-node.js'
import type { OciDigest } from '../../protocol/digest.js'

const log = logger('kilomesh:sim:holdings')

/** State of one tag on one node. */
export interface TagHolding {
  /** Manifest digest the catalog resolves the tag to; null when unknown or deleted. */
  digest: OciDigest | null
  mediaType: string
  sizeBytes: number
  /** True when every blob of that manifest is in the node's store. */
  pulled: boolean
}

/** A node reached a new state for a tag: it learned the tag's digest, or completed its image. */
export interface HoldingChange {
  node: number
  ref: string
  digest: string
  kind: 'learned' | 'pulled'
  /** When it happened, as `performance.now()`. */
  atMs: number
  /** True the first time this node reached this state for this digest during the run. */
  first: boolean
}

const EMPTY: TagHolding = { digest: null, mediaType: '', sizeBytes: 0, pulled: false }

export class HoldingTracker {
  private readonly states = new Map<number, Map<string, TagHolding>>()
  private readonly reached = new Set<string>()
  /** Checks in progress, by node and tag; true when another change arrived during the check. */
  private readonly checking = new Map<string, boolean>()

  private readonly listeners: Array<(change: HoldingChange) => void> = []

  constructor (private readonly refs: string[]) {}

  /** Adds a listener for holding changes. */
  addListener (listener: (change: HoldingChange) => void): void {
    this.listeners.push(listener)
  }

  /** Starts watching a node that just started; reads its catalog now and follows its changes. */
  attach (node: SimNode): void {
    const agent = node.agent
    if (agent == null) {
      return
    }

    const states = new Map<string, TagHolding>()
    this.states.set(node.index, states)
    for (const ref of this.refs) {
      states.set(ref, { ...EMPTY })
      this.refresh(node, ref)
    }

    node.onStop(agent.context.catalog.onChange(current => {
      const ref = `${current.record.repository}:${current.record.tag}`
      if (this.refs.includes(ref)) {
        this.refresh(node, ref)
      }
    }))
    node.onStop(agent.context.subscriptions.onPulled((repository, tag) => {
      const ref = `${repository}:${tag}`
      if (this.refs.includes(ref)) {
        this.refresh(node, ref)
      }
    }))
  }

  /** Forgets a node that stopped, which then counts as holding nothing. */
  detach (index: number): void {
    this.states.delete(index)
  }

  /** Returns what a running node has for a tag. */
  holding (index: number, ref: string): TagHolding {
    return this.states.get(index)?.get(ref) ?? EMPTY
  }

  /** Re-checks every node that resolves a tag but lacks some of its blobs. */
  tick (nodes: SimNode[]): void {
    for (const node of nodes) {
      const states = this.states.get(node.index)
      for (const [ref, state] of states ?? []) {
        if (state.digest != null && !state.pulled) {
          this.refresh(node, ref)
        }
      }
    }
  }

  /**
   * Reads the catalog's current record for `ref`, then checks the store. One
   * check runs per node and tag at a time. A change that arrives during a
   * check starts another check after it, so no change is missed.
   */
  private refresh (node: SimNode, ref: string): void {
    const key = `${node.index} ${ref}`
    if (this.checking.has(key)) {
      this.checking.set(key, true)
      return
    }
    this.checking.set(key, false)
    this.check(node, ref).catch(err => {
      log.error('checking %s on %s failed: %e', ref, node.name, err)
    }).finally(() => {
      const again = this.checking.get(key) === true
      this.checking.delete(key)
      if (again) {
        this.refresh(node, ref)
      }
    })
  }

  private async check (node: SimNode, ref: string): Promise<void> {
    const agent = node.agent
    const states = this.states.get(node.index)
    if (agent == null || states == null) {
      return
    }

    const parsed = parseReference(ref, { allowDigest: false })
    const record = agent.context.catalog.get(parsed.repository, parsed.tag ?? '')?.record
    const next: TagHolding = record == null || record.deleted || record.digest == null
      ? { ...EMPTY }
      : { digest: record.digest, mediaType: record.mediaType, sizeBytes: record.sizeBytes, pulled: false }

    if (next.digest != null) {
      try {
        await listImageBlobs(agent.context.store, { digest: next.digest, mediaType: next.mediaType, size: next.sizeBytes }, { platform: localPlatform() })
        next.pulled = true
      } catch (err) {
        if (!(err instanceof BlobNotFoundError)) {
          log('%s holds a damaged image for %s: %e', node.name, ref, err)
        }
      }
    }

    // The node may have stopped, or its catalog moved on, while the store was read.
    if (this.states.get(node.index) !== states || node.agent !== agent) {
      return
    }
    const previous = states.get(ref) ?? EMPTY
    states.set(ref, next)

    if (next.digest != null && next.digest !== previous.digest) {
      this.report(node.index, ref, next.digest, 'learned')
    }
    if (next.digest != null && next.pulled && (!previous.pulled || next.digest !== previous.digest)) {
      this.report(node.index, ref, next.digest, 'pulled')
    }
  }

  private report (node: number, ref: string, digest: string, kind: HoldingChange['kind']): void {
    const key = `${node} ${ref} ${digest} ${kind}`
    const first = !this.reached.has(key)
    this.reached.add(key)
    const change: HoldingChange = { node, ref, digest, kind, atMs: performance.now(), first }
    this.listeners.forEach(listener => { listener(change) })
  }
}
