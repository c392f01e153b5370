import { expect } from 'chai'
import { createHash } from 'node:crypto'
import { cp, mkdtemp, readFile, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { OCI_MANIFEST } from '../../../node/image/media-types.js'
import { cleanUp, runCli, startAgent, type TestAgent } from '../../utils/agents.js'
import { findRef } from '../../utils/layout.js'
import { fixture } from '../../utils/paths.js'

/**
 * Copies the micro-httpd layout and tags as `v1` a copy of its v1 manifest
 * whose own mediaType field, or the index.json descriptor's, carries a charset.
 */
async function layoutWithCharset (folders: string[], where: 'manifest' | 'index'): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), 'km-charset-'))
  folders.push(root)
  await cp(fixture('micro-httpd'), root, { recursive: true })

  const original = await findRef(root, 'v1')
  const manifest = JSON.parse(await readFile(join(root, 'blobs', 'sha256', (original?.digest ?? '').slice('sha256:'.length)), 'utf8')) as { mediaType: string }
  if (where === 'manifest') {
    manifest.mediaType = `${OCI_MANIFEST}; charset=utf-8`
  }
  const bytes = Buffer.from(JSON.stringify(manifest))
  const hex = createHash('sha256').update(bytes).digest('hex')
  await writeFile(join(root, 'blobs', 'sha256', hex), bytes)

  const mediaType = where === 'index' ? `${OCI_MANIFEST}; charset=utf-8` : OCI_MANIFEST
  await writeFile(join(root, 'index.json'), JSON.stringify({
    schemaVersion: 2,
    manifests: [{ mediaType, digest: `sha256:${hex}`, size: bytes.byteLength, annotations: { 'org.opencontainers.image.ref.name': 'v1' } }]
  }))
  return root
}

describe('publish of a media type with parameters', function () {
  this.timeout(60_000)
  let agent: TestAgent
  const folders: string[] = []

  before(async () => {
    agent = await startAgent()
  })

  after(async () => {
    await cleanUp([agent], folders)
  })

  it('names the manifest mediaType field', async () => {
    const layout = await layoutWithCharset(folders, 'manifest')

    const result = await runCli(['publish', 'demo/charset:v1', '--from', `${layout}:v1`, '--dir', agent.dir])

    expect(result.code).to.not.equal(0)
    expect(result.stderr).to.contain(`invalid manifest mediaType "${OCI_MANIFEST}; charset=utf-8"`)
    expect(result.stderr).to.contain(`change the manifest mediaType field to "${OCI_MANIFEST}"`)
  })

  it('names the index.json descriptor', async () => {
    const layout = await layoutWithCharset(folders, 'index')

    const result = await runCli(['publish', 'demo/charset:v1', '--from', `${layout}:v1`, '--dir', agent.dir])

    expect(result.code).to.not.equal(0)
    expect(result.stderr).to.contain('must not carry parameters such as "; charset=utf-8"')
    expect(result.stderr).to.contain(`to "${OCI_MANIFEST}"`)
  })
})
