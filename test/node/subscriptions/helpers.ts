/** Helpers for tests of subscriptions, rollback and garbage collection with real agents. */
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { runCliOk, type TestAgent } from '../../utils/agents.js'
import { findRef } from '../../utils/layout.js'
import { fixture } from '../../utils/paths.js'
import type { SubscriptionView } from '../../../node/agent/subscription-views.js'

/** Digests of the fixture images used as versions of one tag. */
export const V1 = 'sha256:b00a22a43573e6deb217672d8fad3294e1a02e7d984c5a072d2044b18f24928c'
export const V2 = 'sha256:0ea58ed57cbc25be2db9222d31e8a50e31e55e489df4b15d0380714122999f10'
export const BUSYBOX_AMD64 = 'sha256:15cdd45bae16e02d67b6126196337f6ac2e3fd5cb5ae43c9b5f53c2816a93d79'
export const BUSYBOX_ARM64 = 'sha256:89f5a47f98b36d5b49826fe6a45522394f15f45fd43bfc6e6d12a248f372c756'
/** The multi-platform index of busybox: linux/amd64 and linux/arm64. */
export const BUSYBOX_INDEX = 'sha256:603d8711a8f573ba3cc239fe2cf9e88fa11bd1b7e233be98db07d2f2a3c4782b'

/** Image sources for `kilomesh publish --from`, by digest. */
export const SOURCES: Record<string, string> = {
  [V1]: `${fixture('micro-httpd')}:v1`,
  [V2]: `${fixture('micro-httpd')}:v2`,
  [BUSYBOX_AMD64]: `${fixture('busybox')}:1.35-amd64`,
  [BUSYBOX_ARM64]: `${fixture('busybox')}:1.35-arm64`,
  [BUSYBOX_INDEX]: `${fixture('busybox')}:1.35`
}

/** Default time a test waits for an agent to pull, in ms. */
export const PULL_WAIT_MS = 20_000

async function sleep (ms: number): Promise<void> {
  await new Promise(resolve => setTimeout(resolve, ms))
}

/** Polls `condition` every 100 ms until it returns true; throws an error naming `what` after `timeoutMs`. */
export async function waitFor (condition: () => Promise<boolean>, what: string, timeoutMs = PULL_WAIT_MS): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!await condition()) {
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    }
    await sleep(100)
  }
}

/** Returns the digest index.json names `refName` in an agent's data directory. */
export async function refDigest (agent: TestAgent, refName: string): Promise<string | undefined> {
  return (await findRef(agent.dir, refName))?.digest
}

/** Waits until an agent's index.json points `refName` at `digest`. */
export async function waitForRef (agent: TestAgent, refName: string, digest: string, timeoutMs = PULL_WAIT_MS): Promise<void> {
  let last: string | undefined
  await waitFor(async () => {
    last = await refDigest(agent, refName)
    return last === digest
  }, `${refName} to point at ${digest} in ${agent.dir}`, timeoutMs).catch((err: Error) => {
    throw new Error(`${err.message}; last seen ${last ?? 'none'}\nagent output:\n${agent.logs().slice(-3000)}`)
  })
}

/** Publishes one of the fixture images under `reference` on `agent`. */
export async function publish (agent: TestAgent, reference: string, digest: string): Promise<void> {
  const source = SOURCES[digest]
  if (source == null) {
    throw new Error(`no fixture image with digest ${digest}`)
  }
  await runCliOk(['publish', reference, '--from', source, '--dir', agent.dir])
}

/** Returns `kilomesh subscriptions --json` of an agent. */
export async function subscriptionViews (agent: TestAgent): Promise<SubscriptionView[]> {
  return JSON.parse(await runCliOk(['subscriptions', '--json', '--dir', agent.dir])) as SubscriptionView[]
}

/** Returns the parsed config.json of an agent. */
export async function readConfig (agent: TestAgent): Promise<Record<string, unknown>> {
  return JSON.parse(await readFile(join(agent.dir, 'config.json'), 'utf8')) as Record<string, unknown>
}

/** Returns true when the agent's catalog has a record of `repository:tag` pointing at `digest`. */
export async function knowsTag (agent: TestAgent, repository: string, tag: string, digest: string): Promise<boolean> {
  const images = JSON.parse(await runCliOk(['images', '--json', '--dir', agent.dir])) as Array<{ repository: string, tag: string, digest: string }>
  return images.some(image => image.repository === repository && image.tag === tag && image.digest === digest)
}

/** Returns the first dialable address of an agent. */
export function addressOf (agent: TestAgent): string {
  const address = agent.info.multiaddrs[0]
  if (address == null) {
    throw new Error(`agent in ${agent.dir} has no listen address`)
  }
  return address
}
