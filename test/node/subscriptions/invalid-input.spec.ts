import { expect } from 'chai'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { cleanUp, createDataDir, runCli, startAgent, type TestAgent } from '../../utils/agents.js'

describe('subscriptions invalid input', function () {
  this.timeout(60_000)
  let agent: TestAgent
  let offline: string

  before(async () => {
    agent = await startAgent()
    offline = await createDataDir()
  })

  after(async () => {
    await cleanUp([agent], [offline])
  })

  const cases: Array<{ name: string, args: string[], code: number, message: RegExp }> = [
    { name: 'uppercase repository', args: ['subscribe', 'Demo/httpd:stable'], code: 1, message: /invalid repository name "Demo\/httpd"/ },
    { name: 'subscription to a digest', args: ['subscribe', `demo/httpd@sha256:${'a'.repeat(64)}`], code: 1, message: /a digest never gets new versions/ },
    { name: 'invalid tag', args: ['subscribe', 'demo/httpd:-v1'], code: 1, message: /invalid tag "-v1"/ },
    { name: 'subscribe without reference', args: ['subscribe'], code: 2, message: /takes 1 argument/ },
    { name: 'unknown subscription', args: ['unsubscribe', 'demo/never:v1'], code: 1, message: /demo\/never:v1 is not subscribed: there are no subscriptions/ },
    { name: 'rollback without tag', args: ['rollback', 'demo/httpd'], code: 1, message: /missing tag/ },
    { name: 'rollback to a digest', args: ['rollback', `demo/httpd@sha256:${'a'.repeat(64)}`], code: 1, message: /REPOSITORY:TAG/ },
    { name: 'rollback with --local and --release', args: ['rollback', 'demo/httpd:v1', '--local', '--release'], code: 2, message: /--local and --release cannot be combined/ },
    { name: 'gc size without number', args: ['gc', '--max-storage', 'MB'], code: 1, message: /invalid --max-storage "MB"/ },
    { name: 'gc negative size', args: ['gc', '--max-storage=-1GB'], code: 1, message: /invalid --max-storage "-1GB"/ },
    { name: 'gc unknown flag', args: ['gc', '--quota', '5MB'], code: 2, message: /quota/ }
  ]

  for (const testCase of cases) {
    it(`rejects ${testCase.name}`, async () => {
      const result = await runCli([...testCase.args, '--dir', agent.dir])

      expect(result.code, result.stderr).to.equal(testCase.code)
      expect(result.stderr).to.match(testCase.message)
    })
  }

  it('rejects a bad reference while no agent runs', async () => {
    const result = await runCli(['subscribe', 'demo/HTTPD', '--dir', offline])

    expect(result.code).to.equal(1)
    expect(result.stderr).to.match(/invalid repository name "demo\/HTTPD"/)
  })

  it('names the covering subscription on unsubscribe', async () => {
    await runCli(['subscribe', 'demo/tools', '--dir', offline])

    const result = await runCli(['unsubscribe', 'demo/tools:a', '--dir', offline])

    expect(result.code).to.equal(1)
    expect(result.stderr).to.match(/covered by the subscription to every tag of demo\/tools; unsubscribe demo\/tools instead/)
  })

  it('subscribe reports an overlapping repository', async () => {
    await runCli(['subscribe', 'demo/overlap', '--dir', offline])

    const tag = await runCli(['subscribe', 'demo/overlap:v2', '--dir', offline])
    const json = await runCli(['subscribe', 'demo/overlap:v3', '--dir', offline, '--json'])
    const repository = await runCli(['subscribe', 'demo/overlap', '--dir', offline])

    expect(tag.code, tag.stderr).to.equal(0)
    expect(tag.stdout).to.contain('the subscription to every tag of demo/overlap pulls it too; this one keeps it after "kilomesh unsubscribe demo/overlap"')
    expect(JSON.parse(json.stdout)).to.include({ subscription: 'demo/overlap:v3', added: true, coveredBy: 'demo/overlap' })
    expect(repository.stdout).to.contain('already subscribed to demo/overlap')
    expect(repository.stdout).to.contain('it also covers demo/overlap:v2, demo/overlap:v3, which stay subscribed on their own')
  })

  it('rejects a bad --max-storage at agent start', async () => {
    const result = await runCli(['agent', '--dir', offline, '--listen', '/ip4/127.0.0.1/tcp/0', '--registry', 'off', '--max-storage', '5 parsecs'])

    expect(result.code).to.equal(2)
    expect(result.stderr).to.match(/invalid --max-storage "5 parsecs": give a number of bytes with an optional unit B, kB, MB, GB, TB/)
  })

  it('rejects a bad maxStorageBytes in config.json', async () => {
    const path = join(offline, 'config.json')
    const original = await readFile(path, 'utf8')
    try {
      await writeFile(path, JSON.stringify({ ...JSON.parse(original), maxStorageBytes: '2 GB per device' }))
      const result = await runCli(['agent', '--dir', offline, '--listen', '/ip4/127.0.0.1/tcp/0', '--registry', 'off'])

      expect(result.code).to.equal(1)
      expect(result.stderr).to.contain(`invalid "maxStorageBytes" in ${path} "2 GB per device"`)
    } finally {
      await writeFile(path, original)
    }
  })

  it('rejects a bad subscription in config.json', async () => {
    const path = join(offline, 'config.json')
    const original = await readFile(path, 'utf8')
    try {
      await writeFile(path, JSON.stringify({ ...JSON.parse(original), subscriptions: ['demo/ok:v1', 'Bad/Name'] }))
      const result = await runCli(['agent', '--dir', offline, '--listen', '/ip4/127.0.0.1/tcp/0', '--registry', 'off'])

      expect(result.code).to.equal(1)
      expect(result.stderr).to.contain(`"subscriptions[1]" in ${path}: invalid repository name "Bad/Name"`)
    } finally {
      await writeFile(path, original)
    }
  })
})
