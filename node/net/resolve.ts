/**
 * `/kilomesh/resolve/1.0.0`: asks connected peers for their record of one tag.
 * It lets a pull issued right after a publish elsewhere succeed before the
 * gossip arrives, and lets a device that was offline learn a tag at once.
 */
import { logger } from '@libp2p/logger'
import { pbStream } from '@libp2p/utils'
import { MAX_MESSAGE_BYTES, MAX_RESOLVE_RECORDS, RESOLVE_PROTOCOL } from '../../protocol/constants.js'
import { ResolveRequest, ResolveResponse } from '../../protocol/messages/resolve.js'
import { isRepository, isTag } from '../../protocol/reference.js'
import { timeoutSignal } from './signals.js'
import { MAX_INBOUND_RESOLVE_STREAMS, REQUEST_TIMEOUT_MS, RESOLVE_TIMEOUT_MS } from './constants.js'
import type { Catalog } from '../catalog/catalog.js'
import type { KilomeshLibp2p } from './libp2p.js'
import type { AbortOptions, PeerId } from '@libp2p/interface'

const log = logger('kilomesh:resolve')

/** Registers the resolve handler, which responds from the local catalog. */
export async function handleResolve (node: KilomeshLibp2p, catalog: Catalog): Promise<void> {
  await node.handle(RESOLVE_PROTOCOL, async (stream, connection) => {
    const signal = AbortSignal.timeout(REQUEST_TIMEOUT_MS)
    try {
      const messages = pbStream(stream, { maxDataLength: MAX_MESSAGE_BYTES })
      const request = await messages.read(ResolveRequest, { signal })
      const envelopes: Array<Uint8Array<ArrayBuffer>> = []

      if (isRepository(request.repository) && isTag(request.tag)) {
        const record = catalog.get(request.repository, request.tag)
        if (record != null) {
          envelopes.push(new Uint8Array(record.envelope))
        }
      }

      await messages.write({ envelopes }, ResolveResponse, { signal })
      await stream.close({ signal })
    } catch (err: any) {
      log('resolve request from %p failed: %e', connection.remotePeer, err)
      stream.abort(err)
    }
  }, { maxInboundStreams: MAX_INBOUND_RESOLVE_STREAMS })
}

/**
 * Asks every connected peer for its record of `repository:tag` and merges the
 * responses into the catalog (each is verified there). Returns the peers whose
 * record is the one that won, as the first sources to fetch from.
 */
export async function resolveFromPeers (node: KilomeshLibp2p, catalog: Catalog, repository: string, tag: string, options: AbortOptions = {}): Promise<PeerId[]> {
  const signal = timeoutSignal(RESOLVE_TIMEOUT_MS, options.signal)
  const answers: Array<{ peer: PeerId, envelope: Uint8Array }> = []

  await Promise.all(node.getPeers().map(async peer => {
    try {
      const stream = await node.dialProtocol(peer, RESOLVE_PROTOCOL, { signal })
      const messages = pbStream(stream, { maxDataLength: MAX_MESSAGE_BYTES })
      await messages.write({ repository, tag }, ResolveRequest, { signal })
      const response = await messages.read(ResolveResponse, { signal, limits: { envelopes: MAX_RESOLVE_RECORDS } })
      await stream.close({ signal }).catch(() => {})

      for (const envelope of response.envelopes) {
        const result = await catalog.addEnvelope(envelope, { signal, from: peer.toString() })
        if (result.status === 'rejected') {
          log('record for %s:%s from %p rejected: %s', repository, tag, peer, result.reason)
          continue
        }
        answers.push({ peer, envelope })
      }
    } catch (err: any) {
      log.trace('%p did not resolve %s:%s: %e', peer, repository, tag, err)
    }
  }))

  const winner = catalog.get(repository, tag)
  if (winner == null) {
    return []
  }
  return answers.filter(answer => Buffer.compare(answer.envelope, winner.envelope) === 0).map(answer => answer.peer)
}
