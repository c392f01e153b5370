/**
 * Network namespaces for tests: hosts that the test creates itself, joined
 * by veth pairs to a bridge in a namespace of their own, with addresses from
 * 10.213.0.0/24 that exist only inside them. Everything is removed in
 * `destroy`, which tests call in `after` hooks so that a failed test cleans up
 * too.
 */
import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { promisify } from 'node:util'

const run = promisify(execFile)

async function ip (args: string[]): Promise<void> {
  await run('ip', args, { timeout: 10_000 })
}

/** True when this process may create network namespaces (root with iproute2). */
export async function canCreateNamespaces (): Promise<boolean> {
  if (process.getuid?.() !== 0) {
    return false
  }
  const probe = `kmprobe${randomBytes(3).toString('hex')}`
  try {
    await ip(['netns', 'add', probe])
    await ip(['netns', 'del', probe])
    return true
  } catch {
    return false
  }
}

export interface TestHost {
  namespace: string
  address: string
}

export interface TestNetwork {
  hosts: TestHost[]
  /** Runs a command inside a host's namespace. */
  exec: (host: TestHost, command: string[]) => Promise<string>
  destroy: () => Promise<void>
}

/** Creates `count` hosts on one bridged LAN; host i gets 10.213.0.(i + 1). */
export async function createTestNetwork (count: number): Promise<TestNetwork> {
  const tag = randomBytes(2).toString('hex')
  const bridgeNamespace = `km${tag}br`
  const hosts: TestHost[] = []
  const created: string[] = []

  const destroy = async (): Promise<void> => {
    for (const namespace of created.reverse()) {
      await ip(['netns', 'del', namespace]).catch(() => {})
    }
  }

  try {
    await ip(['netns', 'add', bridgeNamespace])
    created.push(bridgeNamespace)
    await ip(['-n', bridgeNamespace, 'link', 'add', 'br0', 'type', 'bridge'])
    await ip(['-n', bridgeNamespace, 'link', 'set', 'br0', 'up'])

    for (let i = 0; i < count; i++) {
      const namespace = `km${tag}h${i}`
      const address = `10.213.0.${i + 1}`
      await ip(['netns', 'add', namespace])
      created.push(namespace)
      // Each veth pair is created inside the host namespace, so its names never touch the root namespace.
      await ip(['-n', namespace, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', `p${i}`])
      await ip(['-n', namespace, 'link', 'set', `p${i}`, 'netns', bridgeNamespace])
      await ip(['-n', bridgeNamespace, 'link', 'set', `p${i}`, 'master', 'br0'])
      await ip(['-n', bridgeNamespace, 'link', 'set', `p${i}`, 'up'])
      await ip(['-n', namespace, 'addr', 'add', `${address}/24`, 'dev', 'eth0'])
      await ip(['-n', namespace, 'link', 'set', 'eth0', 'up'])
      await ip(['-n', namespace, 'link', 'set', 'lo', 'up'])
      // mDNS sends to 224.0.0.251; route multicast out of the LAN interface.
      await ip(['-n', namespace, 'route', 'add', '224.0.0.0/4', 'dev', 'eth0'])
      hosts.push({ namespace, address })
    }
  } catch (err) {
    await destroy()
    throw err
  }

  return {
    hosts,
    exec: async (host, command) => {
      const { stdout } = await run('ip', ['netns', 'exec', host.namespace, ...command], { timeout: 30_000 })
      return stdout
    },
    destroy
  }
}
