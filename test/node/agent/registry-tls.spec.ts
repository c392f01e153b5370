import { expect } from 'chai'
import { execFile } from 'node:child_process'
import { readFile, writeFile } from 'node:fs/promises'
import { request } from 'node:https'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { cleanUp, createDataDir, startAgent, type TestAgent } from '../../utils/agents.js'

const run = promisify(execFile)

describe('agent registry over TLS', function () {
  this.timeout(60_000)
  let agent: TestAgent | undefined

  after(async () => {
    await cleanUp(agent == null ? [] : [agent])
  })

  it('serves HTTPS with the configured certificate', async () => {
    const dir = await createDataDir()
    await run('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1',
      '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1',
      '-keyout', join(dir, 'registry.key'), '-out', join(dir, 'registry.crt')])
    const config = JSON.parse(await readFile(join(dir, 'config.json'), 'utf8')) as Record<string, unknown>
    config.registryTls = { certFile: 'registry.crt', keyFile: 'registry.key' }
    await writeFile(join(dir, 'config.json'), JSON.stringify(config))

    agent = await startAgent({ dir, registry: '127.0.0.1:0' })
    const [host, port] = (agent.info.registry ?? '').split(':')
    const ca = await readFile(join(dir, 'registry.crt'))

    const status = await new Promise<number | undefined>((resolve, reject) => {
      request({ host, port: Number(port), path: '/v2/', ca }, response => {
        response.resume()
        resolve(response.statusCode)
      }).once('error', reject).end()
    })

    expect(status).to.equal(200)
  })
})
