/** `kilomesh status`, `peers` and `images`: read-only views of the running agent. */
import { resolveDataDir } from '../../config/paths.js'
import { ControlClient } from '../../control/client.js'
import { COMMON_HELP, formatBytes, printTable, shortDigest, type Command } from '../command.js'
import type { ImageView, PeerView, StatusView } from '../../agent/status.js'

export const statusCommand: Command = {
  name: 'status',
  summary: 'show the running agent: identity, addresses, peers and storage',
  help: `Usage: kilomesh status [--dir DIR] [--json]

Options:
${COMMON_HELP}`,
  options: {},
  positionals: [0, 0],
  async run (values) {
    const client = await ControlClient.connect(resolveDataDir(values.dir))
    const status = await client.get<StatusView>('/status')
    if (values.json === true) {
      console.log(JSON.stringify(status, null, 2))
      return 0
    }

    console.log(`peer ID      ${status.peerId}`)
    console.log(`data dir     ${status.dataDir}`)
    console.log(`uptime       ${Math.round(status.uptimeMs / 1000)} s (pid ${status.pid})`)
    console.log(`registry     ${status.registry ?? 'off'}`)
    console.log(`peers        ${status.connectedPeers} connected`)
    console.log(`tags         ${status.tags}`)
    const quota = status.maxStorageBytes == null ? 'no quota' : `quota ${formatBytes(status.maxStorageBytes)}`
    console.log(`store        ${status.blobs} blobs, ${formatBytes(status.storedBytes)} (${quota})`)
    console.log(`transfers    fetched ${status.fetchedBlobs} blobs (${formatBytes(status.fetchedBytes)}), served ${status.servedBlobs} (${formatBytes(status.servedBytes)})`)
    if (status.penalisedPeers.length > 0) {
      console.log(`penalised    ${status.penalisedPeers.join(', ')}`)
    }
    console.log('addresses')
    for (const address of status.multiaddrs) {
      console.log(`  ${address}`)
    }
    return 0
  }
}

export const peersCommand: Command = {
  name: 'peers',
  summary: 'list the connected peers',
  help: `Usage: kilomesh peers [--dir DIR] [--json]

Options:
${COMMON_HELP}`,
  options: {},
  positionals: [0, 0],
  async run (values) {
    const client = await ControlClient.connect(resolveDataDir(values.dir))
    const peers = await client.get<PeerView[]>('/peers')
    if (values.json === true) {
      console.log(JSON.stringify(peers, null, 2))
    } else if (peers.length === 0) {
      console.log('no connected peers; add one with "kilomesh connect MULTIADDR" or start the agent with --bootstrap')
    } else {
      printTable(['PEER ID', 'DIRECTION', 'RTT', 'ADDRESS'], peers.map(peer => [
        peer.peerId, peer.direction, peer.rttMs == null ? '-' : `${peer.rttMs} ms`, peer.addresses.join(', ')
      ]))
    }
    return 0
  }
}

export const imagesCommand: Command = {
  name: 'images',
  summary: 'list the tags this agent knows and whether their manifests are local',
  help: `Usage: kilomesh images [--dir DIR] [--json]

Options:
${COMMON_HELP}`,
  options: {},
  positionals: [0, 0],
  async run (values) {
    const client = await ControlClient.connect(resolveDataDir(values.dir))
    const images = await client.get<ImageView[]>('/images')
    if (values.json === true) {
      console.log(JSON.stringify(images, null, 2))
    } else if (images.length === 0) {
      console.log('no images; publish one with "kilomesh publish REPOSITORY:TAG --from SOURCE"')
    } else {
      printTable(['REPOSITORY', 'TAG', 'DIGEST', 'SIZE', 'LOCAL', 'PUBLISHED'], images.map(image => [
        image.repository, image.tag, shortDigest(image.digest), formatBytes(image.sizeBytes), image.local ? 'yes' : 'no', image.hlc
      ]))
    }
    return 0
  }
}

export const connectCommand: Command = {
  name: 'connect',
  summary: 'connect to a peer and keep the connection up',
  help: `Usage: kilomesh connect MULTIADDR [--dir DIR]

Dials a peer, such as /ip4/192.0.2.7/tcp/4001/p2p/12D3KooW..., and redials it
with backoff whenever the connection drops, until the agent stops.

Options:
${COMMON_HELP}`,
  options: {},
  positionals: [1, 1],
  async run (values, [address]) {
    const client = await ControlClient.connect(resolveDataDir(values.dir))
    const result = await client.post<{ connected: string }>('/connect', { multiaddr: address })
    console.log(values.json === true ? JSON.stringify(result) : `connected to ${result.connected}`)
    return 0
  }
}
