/**
 * The peers a node is connected to, read from its connections. libp2p's
 * `getPeers()` collects them in a PeerSet, which keeps peer IDs as text and
 * builds a new PeerId from each on the way out. Every new PeerId then
 * encodes its text again when asked. The blob server and the fetcher list
 * the connected peers on every request, so with 40 connections that decoding
 * and encoding took a large share of a busy agent's CPU. A connection keeps
 * one PeerId, whose text is encoded once.
 */
import type { Libp2p, PeerId } from '@libp2p/interface'

/** Returns the text form of every connected peer's ID. */
export function connectedPeerNames (node: Pick<Libp2p, 'getConnections'>): Set<string> {
  const names = new Set<string>()
  for (const connection of node.getConnections()) {
    names.add(connection.remotePeer.toString())
  }
  return names
}

/** Returns one PeerId per connected peer, keyed by its text form. */
export function connectedPeers (node: Pick<Libp2p, 'getConnections'>): Map<string, PeerId> {
  const peers = new Map<string, PeerId>()
  for (const connection of node.getConnections()) {
    const peer = connection.remotePeer
    peers.set(peer.toString(), peer)
  }
  return peers
}
