/**
 * Packet-dropping partitions between hosts of a test network: nftables
 * rules (or iptables when nft is missing) inside the hosts' own network
 * namespaces, which drop every packet to and from the other group.
 */
import { execFile } from 'node:child_process'
import { writeFile, rm, mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import type { TestHost } from '../../utils/netns.js'

const run = promisify(execFile)

/** nftables table that holds the partition rules in each namespace. */
const TABLE = 'kilomesh_partition'

export type FirewallTool = 'nft' | 'iptables'

/** Returns the firewall tool available in a namespace, nft first, or undefined when neither works. */
export async function findFirewallTool (host: TestHost): Promise<FirewallTool | undefined> {
  for (const [tool, probe] of [['nft', ['list', 'tables']], ['iptables', ['-S', 'INPUT']]] as const) {
    try {
      await run('ip', ['netns', 'exec', host.namespace, tool, ...probe], { timeout: 10_000 })
      return tool
    } catch {
      // Try the next tool.
    }
  }
  return undefined
}

async function nftScript (host: TestHost, script: string): Promise<void> {
  const folder = await mkdtemp(join(tmpdir(), 'km-nft-'))
  try {
    const file = join(folder, 'rules.nft')
    await writeFile(file, script)
    await run('ip', ['netns', 'exec', host.namespace, 'nft', '-f', file], { timeout: 10_000 })
  } finally {
    await rm(folder, { recursive: true, force: true })
  }
}

/** Makes `host` drop every packet from and to `others`. */
export async function dropTraffic (tool: FirewallTool, host: TestHost, others: TestHost[]): Promise<void> {
  const addresses = others.map(other => other.address)
  if (tool === 'nft') {
    const set = `{ ${addresses.join(', ')} }`
    await nftScript(host, [
      `table inet ${TABLE} {`,
      '  chain input { type filter hook input priority 0; policy accept;',
      `    ip saddr ${set} drop`,
      '  }',
      '  chain output { type filter hook output priority 0; policy accept;',
      `    ip daddr ${set} drop`,
      '  }',
      '}',
      ''
    ].join('\n'))
    return
  }

  for (const address of addresses) {
    await run('ip', ['netns', 'exec', host.namespace, 'iptables', '-A', 'INPUT', '-s', address, '-j', 'DROP'], { timeout: 10_000 })
    await run('ip', ['netns', 'exec', host.namespace, 'iptables', '-A', 'OUTPUT', '-d', address, '-j', 'DROP'], { timeout: 10_000 })
  }
}

/** Removes the rules `dropTraffic` added to `host`. */
export async function allowTraffic (tool: FirewallTool, host: TestHost): Promise<void> {
  if (tool === 'nft') {
    await run('ip', ['netns', 'exec', host.namespace, 'nft', 'delete', 'table', 'inet', TABLE], { timeout: 10_000 })
    return
  }

  await run('ip', ['netns', 'exec', host.namespace, 'iptables', '-F', 'INPUT'], { timeout: 10_000 })
  await run('ip', ['netns', 'exec', host.namespace, 'iptables', '-F', 'OUTPUT'], { timeout: 10_000 })
}
