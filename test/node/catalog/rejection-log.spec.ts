import { strict as assert } from 'node:assert'
import { format } from 'node:util'
import { describeUnverifiedEnvelope, RejectionLog } from '../../../node/catalog/rejection-log.js'
import { createPublisher, signRecord } from './records.js'
import type { Logger } from '@libp2p/interface'

/** A logger that keeps the formatted error lines, standing in for stderr. */
function capturingLogger (): { log: Logger, errors: string[] } {
  const errors: string[] = []
  const log = Object.assign(() => {}, {
    error: (formatter: string, ...args: unknown[]) => { errors.push(format(formatter, ...args)) },
    trace: () => {},
    enabled: true,
    newScope: () => log
  }) as unknown as Logger
  return { log, errors }
}

describe('RejectionLog', () => {
  it('names peer, repository, tag and reason', () => {
    const { log, errors } = capturingLogger()
    const rejections = new RejectionLog(log, 20)

    rejections.report({ from: 'peerA', repository: 'demo/httpd', tag: 'v1', publisher: 'peerB', reason: 'bad signature' })

    assert.equal(errors.length, 1)
    assert.match(errors[0] ?? '', /demo\/httpd:v1 from peer peerA \(publisher peerB\): bad signature/)
  })

  it('limits lines per minute and counts the rest', () => {
    const { log, errors } = capturingLogger()
    let nowMs = 0
    const rejections = new RejectionLog(log, 3, () => nowMs)

    for (let index = 0; index < 10; index++) {
      rejections.report({ from: 'peerA', repository: 'demo/httpd', tag: `v${index}`, reason: 'untrusted' })
    }
    nowMs = 61_000
    rejections.report({ from: 'peerA', repository: 'demo/httpd', tag: 'later', reason: 'untrusted' })

    assert.equal(errors.length, 4)
    assert.match(errors[3] ?? '', /demo\/httpd:later .*\(7 earlier rejections not logged\)/)
  })

  it('describeUnverifiedEnvelope reads repository and tag without the signature', async () => {
    const publisher = await createPublisher()
    const signed = await signRecord(publisher, { repository: 'demo/httpd', tag: 'v1', hlc: { wallMs: 1, counter: 0 } })

    assert.deepEqual(describeUnverifiedEnvelope(signed.envelope), { repository: 'demo/httpd', tag: 'v1' })
    assert.deepEqual(describeUnverifiedEnvelope(new Uint8Array([1, 2, 3])), {})
  })
})
