/**
 * `agent.json`: written atomically once the agent is ready, removed on a
 * clean stop. The CLI reads it to find the control socket; scripts read it
 * for the peer ID and the bound addresses.
 */
import { readFile, rm } from 'node:fs/promises'
import { writeFileAtomic } from '../store/atomic-file.js'

export interface AgentFile {
  peerId: string
  /** Addresses other agents can dial, each ending in /p2p/PEER_ID. */
  multiaddrs: string[]
  /** Control API address: `unix:` plus the socket path. */
  control: string
  /** HOST:PORT of the OCI registry API, or null when it is off. */
  registry: string | null
  pid: number
}

export async function writeAgentFile (path: string, content: AgentFile): Promise<void> {
  await writeFileAtomic(path, `${JSON.stringify(content, null, 2)}\n`)
}

/** Reads agent.json; returns undefined when it does not exist. */
export async function readAgentFile (path: string): Promise<AgentFile | undefined> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as AgentFile
  } catch (err: any) {
    if (err.code === 'ENOENT') {
      return undefined
    }
    throw new Error(`${path} cannot be read (${err.message}); if no agent is running, delete it`)
  }
}

export async function removeAgentFile (path: string): Promise<void> {
  await rm(path, { force: true })
}

/** Returns true when a process with this pid exists. */
export function isProcessAlive (pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err: any) {
    return err.code === 'EPERM'
  }
}
