/**
 * Child process for the crash test: adds signed records to a catalog in the
 * folder given as the first argument, as fast as it can, and prints the
 * index of each record after its add resolved. The test kills it with
 * SIGKILL at an arbitrary point.
 */
import '../../../node/polyfill.js'
import { TrustPolicy } from '../../../node/catalog/trust.js'
import { createPublisher, openCatalog, signRecord } from './records.js'

const TAGS = 8
const RECORDS = 4000

const folder = process.argv[2]
if (folder == null) {
  throw new Error('usage: crash-writer.js FOLDER')
}

const publisher = await createPublisher()
const { catalog } = await openCatalog({ trust: new TrustPolicy({ config: { mode: 'any' } }), maxHistory: 5 }, folder)
process.stdout.write('ready\n')

for (let index = 0; index < RECORDS; index++) {
  const record = await signRecord(publisher, { repository: `crash/repo${index % 3}`, tag: `t${index % TAGS}`, hlc: { wallMs: Date.UTC(2026, 0, 1), counter: index } })
  await catalog.add(record)
  process.stdout.write(`${index}\n`)
}
