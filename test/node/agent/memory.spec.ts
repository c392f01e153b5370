import { expect } from 'chai'
import { execFile } from 'node:child_process'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { promisify } from 'node:util'
import { REPOSITORY_ROOT } from '../../utils/paths.js'

const MEMORY_MODULE = pathToFileURL(join(REPOSITORY_ROOT, 'dist', 'node', 'agent', 'memory.js')).href

/** Size of V8's new space at start on Node 20.20, in bytes, measured with getHeapSpaceStatistics(). */
const INITIAL_NEW_SPACE_BYTES = 2 * 1024 * 1024

/**
 * Builds a script that keeps 200,000 small objects alive, enough survivors
 * for V8 to grow an unlimited young generation, and prints the new space's
 * size in bytes.
 */
function allocationScript (limit: boolean): string {
  return `import { getHeapSpaceStatistics } from 'node:v8'
const { limitYoungGeneration } = await import(${JSON.stringify(MEMORY_MODULE)})
${limit ? 'limitYoungGeneration()' : ''}
const kept = []
for (let i = 0; i < 200_000; i++) {
  kept.push({ i, text: 'entry ' + i })
}
const newSpace = getHeapSpaceStatistics().find(space => space.space_name === 'new_space')
console.log(newSpace.space_size, kept.length)`
}

/** Runs the script in a child process, so that the V8 flag never reaches the test process. */
async function measureNewSpaceBytes (limit: boolean): Promise<number> {
  const { stdout } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', allocationScript(limit)], { timeout: 30_000 })
  return Number(stdout.trim().split(' ')[0])
}

describe('agent memory', function () {
  this.timeout(60_000)

  it('limitYoungGeneration keeps the initial new space', async () => {
    const limited = await measureNewSpaceBytes(true)

    expect(limited).to.be.at.most(INITIAL_NEW_SPACE_BYTES)
  })

  it('young generation grows without the limit', async () => {
    // The check above means something only if the same allocations grow an
    // unlimited young generation.
    const unlimited = await measureNewSpaceBytes(false)

    expect(unlimited).to.be.above(INITIAL_NEW_SPACE_BYTES)
  })
})
