/**
 * Lists the ES modules a Node command loads, through a module `load` hook
 * (`module.register`, Node 20.6 and later) that prints each URL on stderr.
 * The benchmark uses it to count the libp2p modules that `kilomesh status`
 * loads, since a command that only asks the agent should load none.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { runNodeToExit } from './processes.js'

const MARKER = 'kilomesh-bench-loaded '

const HOOKS_SOURCE = `import { writeSync } from 'node:fs'
export async function load (url, context, nextLoad) {
  writeSync(2, ${JSON.stringify(MARKER)} + url + '\\n')
  return nextLoad(url, context)
}
`

const REGISTER_SOURCE = `import { register } from 'node:module'
register('./hooks.mjs', import.meta.url)
`

/** Runs `node args...` to a zero exit and returns the URLs of the modules it loaded, in load order. */
export async function listLoadedModules (args: string[], timeoutMs: number): Promise<string[]> {
  const folder = await mkdtemp(join(tmpdir(), 'km-bench-hooks-'))
  try {
    await writeFile(join(folder, 'hooks.mjs'), HOOKS_SOURCE)
    await writeFile(join(folder, 'register.mjs'), REGISTER_SOURCE)
    const output = await runNodeToExit(['--import', pathToFileURL(join(folder, 'register.mjs')).href, ...args], timeoutMs)
    return output.split('\n')
      .filter(line => line.startsWith(MARKER))
      .map(line => line.slice(MARKER.length))
  } finally {
    await rm(folder, { recursive: true, force: true })
  }
}

/** Returns the npm package a module URL belongs to, such as `@libp2p/crypto`, or undefined outside node_modules. */
export function packageOf (url: string): string | undefined {
  const match = /\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url.slice(url.lastIndexOf('/node_modules/')))
  return match?.[1]
}

/** Counts loaded modules by package, for the packages `isWanted` selects. */
export function countByPackage (urls: string[], isWanted: (name: string) => boolean): Map<string, number> {
  const counts = new Map<string, number>()
  for (const url of urls) {
    const name = packageOf(url)
    if (name != null && isWanted(name)) {
      counts.set(name, (counts.get(name) ?? 0) + 1)
    }
  }
  return counts
}

/** Returns true for libp2p itself and the packages of the `@libp2p/` scope. */
export function isLibp2pPackage (name: string): boolean {
  return name === 'libp2p' || name.startsWith('@libp2p/')
}
