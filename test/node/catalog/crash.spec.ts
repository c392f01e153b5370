import { strict as assert } from 'node:assert'
import { spawn } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { compareSignedRecords } from '../../../node/catalog/merge.js'
import { decodeTagEntry } from '../../../node/catalog/persistence.js'
import { TrustPolicy } from '../../../node/catalog/trust.js'
import { TAG_KEY_PREFIX } from '../../../node/catalog/constants.js'
import { openCatalog } from './records.js'

const WRITER = fileURLToPath(new URL('./crash-writer.js', import.meta.url))

/** Runs the writer until it acknowledged `minAcknowledged` adds plus a random few, kills it, and returns the last acknowledged index. */
async function runAndKill (folder: string, minAcknowledged: number): Promise<number> {
  const child = spawn(process.execPath, [WRITER, folder], { stdio: ['ignore', 'pipe', 'inherit'] })
  const killAt = minAcknowledged + Math.floor(Math.random() * 50)
  let buffered = ''
  let last = -1

  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error('crash writer made no progress within 30 s')) }, 30_000)
    child.stdout.on('data', (chunk: Buffer) => {
      buffered += chunk.toString()
      const lines = buffered.split('\n')
      buffered = lines.pop() ?? ''
      for (const line of lines) {
        if (/^\d+$/.test(line)) {
          last = Number(line)
        }
      }

      if (last >= killAt) {
        child.kill('SIGKILL')
      }
    })
    child.once('exit', () => { clearTimeout(timer); resolve() })
  })

  return last
}

describe('Catalog after SIGKILL', () => {
  let folder: string

  beforeEach(async () => { folder = await mkdtemp(join(tmpdir(), 'kilomesh-catalog-crash-')) })
  afterEach(async () => { await rm(folder, { recursive: true, force: true }) })

  it('keeps every acknowledged record and no damaged entry', async () => {
    const first = await runAndKill(folder, 100)
    const second = await runAndKill(folder, 300)
    assert.ok(first >= 100, `writer acknowledged only ${first} records`)
    assert.ok(second >= 300, `writer acknowledged only ${second} records`)

    const { catalog, datastore, close } = await openCatalog({ trust: new TrustPolicy({ config: { mode: 'any' } }), maxHistory: 5 }, folder)
    try {
      let entries = 0
      for await (const { value } of datastore.query({ prefix: `${TAG_KEY_PREFIX}/` })) {
        const entry = decodeTagEntry(value)
        entries++
        assert.ok(entry.history.length <= 5)
        for (const old of entry.history) {
          assert.ok(compareSignedRecords(old, entry.winner) < 0, 'a history entry beats the winner')
        }
      }

      assert.equal(entries, catalog.list().length)
      assert.equal(entries, 8 * 3)
      // The second run signs counters from 0 again, so its record for a tag
      // only wins where it passed the first run's counter.
      const latest = Math.max(first, second)
      for (let index = latest - 7; index <= latest; index++) {
        const winner = catalog.get(`crash/repo${index % 3}`, `t${index % 8}`)
        assert.ok(winner != null, `tag crash/repo${index % 3}:t${index % 8} missing`)
        assert.ok(winner.record.hlc.counter >= index, `tag t${index % 8} has counter ${winner.record.hlc.counter}, expected at least ${index}`)
      }
    } finally {
      await close()
    }
  })
})
