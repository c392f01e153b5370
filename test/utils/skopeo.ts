/** Runs the real skopeo from Debian's packages in tests. */
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'

const run = promisify(execFile)

/** True when skopeo is installed; `.ci/run` installs it, so CI never skips. */
export async function hasSkopeo (): Promise<boolean> {
  try {
    await run('skopeo', ['--version'])
    return true
  } catch {
    return false
  }
}

export async function skopeo (args: string[]): Promise<string> {
  const { stdout } = await run('skopeo', ['--insecure-policy', ...args], { timeout: 60_000 })
  return stdout
}
