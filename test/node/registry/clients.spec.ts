/**
 * The registry API of two connected agents, driven by the real OCI clients
 * from Debian's packages. Images go in through agent A and come out through
 * agent B, which has to resolve the tags and fetch the blobs through the
 * mesh. containerd runs privately, with its socket and state in a temporary
 * folder.
 */
import { strict as assert } from 'node:assert'
import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { access, mkdir, mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { gunzipSync } from 'node:zlib'
import { digestOf } from '../../../protocol/digest.js'
import { cleanUp, startAgent, type TestAgent } from '../../utils/agents.js'
import { fixturePath, send } from './helpers.js'

const run = promisify(execFile)

const HTTPD_V1 = 'sha256:b00a22a43573e6deb217672d8fad3294e1a02e7d984c5a072d2044b18f24928c'
const HTTPD_V2 = 'sha256:0ea58ed57cbc25be2db9222d31e8a50e31e55e489df4b15d0380714122999f10'
const BUSYBOX_INDEX = 'sha256:603d8711a8f573ba3cc239fe2cf9e88fa11bd1b7e233be98db07d2f2a3c4782b'

/** A loopback port where nothing listens, for containerd's upstream server behind the mirror. */
const CLOSED_LOOPBACK_PORT = 9

async function installed (command: string): Promise<boolean> {
  try {
    await run('sh', ['-c', `command -v ${command}`])
    return true
  } catch {
    return false
  }
}

/** Runs a client and returns its stdout; a failure carries the client's stderr. */
async function client (command: string, args: string[], timeoutMs = 120_000): Promise<string> {
  try {
    const { stdout } = await run(command, args, { timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 })
    return stdout
  } catch (err: any) {
    throw new Error(`${command} ${args.join(' ')} failed: ${err.stderr ?? err.message}`)
  }
}

async function skopeo (args: string[]): Promise<string> {
  return client('skopeo', ['--insecure-policy', ...args])
}

/** Checks that every blob of a pulled layout is byte-equal to the fixture's, and returns their names. */
async function assertSameBlobs (pulled: string, fixture: string): Promise<string[]> {
  const names = await readdir(join(pulled, 'blobs', 'sha256'))
  for (const name of names) {
    const copy = await readFile(join(pulled, 'blobs', 'sha256', name))
    const original = await readFile(join(fixturePath(fixture), 'blobs', 'sha256', name))
    assert.ok(copy.equals(original), `blob ${name} differs from the fixture`)
  }
  return names.sort()
}

/**
 * Writes an OCI archive holding one image with a fresh random layer, so that
 * a push of it has to upload every blob. Returns the archive path and the
 * manifest digest.
 */
async function makeFreshArchive (folder: string): Promise<{ archive: string, digest: string }> {
  const layout = join(folder, 'layout')
  const content = join(folder, 'content')
  await mkdir(join(layout, 'blobs', 'sha256'), { recursive: true })
  await mkdir(content, { recursive: true })
  await writeFile(join(content, 'payload.txt'), `fresh payload ${Math.random()}\n`.repeat(1000))
  await client('tar', ['-czf', join(folder, 'layer.tar.gz'), '-C', content, 'payload.txt'])

  const storeBlob = async (bytes: Buffer): Promise<{ digest: string, size: number }> => {
    const digest = digestOf(bytes)
    await writeFile(join(layout, 'blobs', 'sha256', digest.slice('sha256:'.length)), bytes)
    return { digest, size: bytes.byteLength }
  }

  const layerBytes = await readFile(join(folder, 'layer.tar.gz'))
  const layer = await storeBlob(layerBytes)
  const config = await storeBlob(Buffer.from(JSON.stringify({
    architecture: process.arch === 'arm64' ? 'arm64' : 'amd64',
    os: 'linux',
    config: {},
    rootfs: { type: 'layers', diff_ids: [digestOf(gunzipSync(layerBytes))] }
  })))
  const manifest = await storeBlob(Buffer.from(JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', ...layer }]
  })))

  await writeFile(join(layout, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}')
  await writeFile(join(layout, 'index.json'), JSON.stringify({
    schemaVersion: 2,
    manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', ...manifest, annotations: { 'org.opencontainers.image.ref.name': 'v1' } }]
  }))

  const archive = join(folder, 'fresh.oci.tar')
  await client('tar', ['-cf', archive, '-C', layout, '.'])
  return { archive, digest: manifest.digest }
}

/** Polls until `check` returns true or the time is up; returns the last result. */
async function waitFor (check: () => Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (await check()) {
      return true
    }
    await new Promise(resolve => setTimeout(resolve, 100))
  }
  return check()
}

function portOf (agent: TestAgent): number {
  return Number(agent.info.registry?.split(':').pop())
}

describe('registry with real OCI clients', function () {
  this.timeout(180_000)
  let a: TestAgent
  let b: TestAgent
  let work: string

  before(async function () {
    if (!await installed('skopeo')) {
      // NOTE: .ci/run installs the clients, so this only skips on a machine set up by hand.
      console.warn('skipping the real-client tests: skopeo is not installed (apt-get install skopeo podman buildah containerd)')
      this.skip()
    }

    work = await mkdtemp(join(tmpdir(), 'kilomesh-clients-'))
    // Agent A logs every registry request, so tests can check what the clients sent.
    a = await startAgent({ registry: '127.0.0.1:0', env: { DEBUG: 'kilomesh:registry:trace' } })
    b = await startAgent({ registry: '127.0.0.1:0', bootstrap: [a.info.multiaddrs[0] ?? ''] })
  })

  after(async () => {
    await cleanUp([a, b].filter(agent => agent != null), work == null ? [] : [work])
  })

  describe('skopeo', () => {
    it('copies micro-httpd:v1 through the mesh byte for byte', async () => {
      await skopeo(['copy', '--dest-tls-verify=false', `oci:${fixturePath('micro-httpd')}:v1`, `docker://${a.info.registry}/demo/httpd:v1`])
      const out = join(work, 'httpd-out')

      await skopeo(['copy', '--src-tls-verify=false', `docker://${b.info.registry}/demo/httpd:v1`, `oci:${out}:v1`])

      const index = JSON.parse(await readFile(join(out, 'index.json'), 'utf8')) as { manifests: Array<{ digest: string }> }
      assert.equal(index.manifests[0]?.digest, HTTPD_V1)
      assert.equal((await assertSameBlobs(out, 'micro-httpd')).length, 3)
    })

    it('copies busybox:1.35 with --all byte for byte', async () => {
      await skopeo(['copy', '--all', '--dest-tls-verify=false', `oci:${fixturePath('busybox')}:1.35`, `docker://${a.info.registry}/demo/busybox:1.35`])
      const out = join(work, 'busybox-out')

      await skopeo(['copy', '--all', '--src-tls-verify=false', `docker://${b.info.registry}/demo/busybox:1.35`, `oci:${out}:1.35`])

      const index = JSON.parse(await readFile(join(out, 'index.json'), 'utf8')) as { manifests: Array<{ digest: string }> }
      assert.equal(index.manifests[0]?.digest, BUSYBOX_INDEX)
      assert.deepEqual(await assertSameBlobs(out, 'busybox'), (await readdir(join(fixturePath('busybox'), 'blobs', 'sha256'))).sort())
    })

    it('inspects and lists tags through agent B', async () => {
      const inspected = JSON.parse(await skopeo(['inspect', '--tls-verify=false', `docker://${b.info.registry}/demo/busybox:1.35`])) as { Digest: string, RepoTags: string[] }
      const listed = JSON.parse(await skopeo(['list-tags', '--tls-verify=false', `docker://${b.info.registry}/demo/busybox`])) as { Tags: string[] }

      assert.equal(inspected.Digest, BUSYBOX_INDEX)
      assert.deepEqual(inspected.RepoTags, ['1.35'])
      assert.deepEqual(listed.Tags, ['1.35'])
    })

    it('delete removes the tag on both agents', async () => {
      await skopeo(['copy', '--dest-tls-verify=false', `oci:${fixturePath('micro-httpd')}:v2`, `docker://${a.info.registry}/demo/deleted:v2`])

      await skopeo(['delete', '--tls-verify=false', `docker://${a.info.registry}/demo/deleted:v2`])

      const onA = await send(portOf(a), 'HEAD', '/v2/demo/deleted/manifests/v2')
      assert.equal(onA.status, 404)
      const goneOnB = await waitFor(async () => (await send(portOf(b), 'HEAD', '/v2/demo/deleted/manifests/v2')).status === 404, 10_000)
      assert.equal(goneOnB, true, 'agent B still serves the deleted tag after 10 s')
    })
  })

  describe('podman and buildah', () => {
    it('podman pulls and runs busybox from agent B', async function () {
      if (!await installed('podman')) {
        this.skip()
      }
      const podman = ['--root', join(work, 'podman', 'root'), '--runroot', join(work, 'podman', 'run'), '--storage-driver', 'vfs', '--cgroup-manager', 'cgroupfs']
      await skopeo(['copy', '--all', '--dest-tls-verify=false', `oci:${fixturePath('busybox')}:1.35`, `docker://${a.info.registry}/demo/podman:1.35`])

      await client('podman', [...podman, 'pull', '--tls-verify=false', `${b.info.registry}/demo/podman:1.35`])
      // The image's entrypoint is /bin/sh, so the arguments are a shell command.
      const output = await client('podman', [...podman, 'run', '--rm', '--runtime', 'runc', '--network', 'none',
        '--ulimit', 'nofile=1024:1024', '--ulimit', 'nproc=4096:4096', `${b.info.registry}/demo/podman:1.35`, '-c', 'echo hello from the mesh'])

      assert.equal(output.trim(), 'hello from the mesh')
    })

    it('buildah pushes a new image that agent B serves', async function () {
      if (!await installed('buildah')) {
        this.skip()
      }
      const buildah = ['--root', join(work, 'buildah', 'root'), '--runroot', join(work, 'buildah', 'run'), '--storage-driver', 'vfs']
      const payload = join(work, 'payload.txt')
      await writeFile(payload, `random payload ${Math.random()}\n`.repeat(2000))
      const container = (await client('buildah', [...buildah, 'from', 'scratch'])).trim()
      await client('buildah', [...buildah, 'copy', container, payload, '/payload.txt'])
      await client('buildah', [...buildah, 'commit', container, 'kilomesh-test-built'])
      const digestFile = join(work, 'buildah-digest')

      await client('buildah', [...buildah, 'push', '--tls-verify=false', '--digestfile', digestFile, 'kilomesh-test-built', `docker://${a.info.registry}/demo/built:v1`])

      const digest = (await readFile(digestFile, 'utf8')).trim()
      assert.match(a.logs(), /PATCH \/v2\/demo\/built\/blobs\/uploads\/\S+ \(chunked body\) -> 202/, 'buildah did not upload with a chunked PATCH')
      const served = await send(portOf(b), 'HEAD', '/v2/demo/built/manifests/v1')
      assert.equal(served.status, 200)
      assert.equal(served.headers['docker-content-digest'], digest)
    })
  })

  describe('containerd', () => {
    let containerd: ChildProcess | undefined
    let folder: string
    let ctr: string[]

    before(async function () {
      if (!await installed('containerd') || !await installed('ctr')) {
        this.skip()
      }

      folder = join(work, 'containerd')
      await mkdir(folder, { recursive: true })
      const socket = join(folder, 'containerd.sock')
      await writeFile(join(folder, 'config.toml'), [
        'version = 2',
        `root = "${join(folder, 'root')}"`,
        `state = "${join(folder, 'state')}"`,
        'disabled_plugins = ["io.containerd.grpc.v1.cri"]',
        '[grpc]',
        `  address = "${socket}"`,
        '[ttrpc]',
        `  address = "${socket}.ttrpc"`,
        '[debug]',
        `  address = "${join(folder, 'debug.sock')}"`,
        '[metrics]',
        '  address = ""'
      ].join('\n'))

      containerd = spawn('containerd', ['--config', join(folder, 'config.toml')], { stdio: 'ignore' })
      const ready = await waitFor(async () => access(socket).then(() => true, () => false), 15_000)
      assert.equal(ready, true, 'containerd did not create its socket within 15 s')
      ctr = ['--address', socket, '--namespace', 'kilomesh-test']
    })

    after(async () => {
      if (containerd?.pid != null && containerd.exitCode == null) {
        const exited = new Promise(resolve => containerd?.once('exit', resolve))
        containerd.kill('SIGTERM')
        await exited
      }
    })

    it('ctr pulls micro-httpd from agent B', async () => {
      await skopeo(['copy', '--dest-tls-verify=false', `oci:${fixturePath('micro-httpd')}:v1`, `docker://${a.info.registry}/demo/ctr-pull:v1`])

      await client('ctr', [...ctr, 'images', 'pull', '--plain-http', '--snapshotter', 'native', `${b.info.registry}/demo/ctr-pull:v1`])

      const listed = await client('ctr', [...ctr, 'images', 'ls'])
      assert.match(listed, new RegExp(`${b.info.registry ?? ''}/demo/ctr-pull:v1\\s+\\S+\\s+${HTTPD_V1}`))
    })

    it('ctr pushes a new image to agent A', async () => {
      const fresh = await makeFreshArchive(join(folder, 'fresh'))
      await client('ctr', [...ctr, 'images', 'import', '--base-name', 'import.test/fresh', '--no-unpack', fresh.archive])
      await client('ctr', [...ctr, 'images', 'tag', 'import.test/fresh:v1', `${a.info.registry}/demo/ctr-push:v1`])

      await client('ctr', [...ctr, 'images', 'push', '--plain-http', `${a.info.registry}/demo/ctr-push:v1`])

      const inspected = JSON.parse(await skopeo(['inspect', '--tls-verify=false', `docker://${b.info.registry}/demo/ctr-push:v1`])) as { Digest: string }
      assert.equal(inspected.Digest, fresh.digest)
      const requests = a.logs().split('\n').filter(line => line.includes('/v2/demo/ctr-push/blobs/uploads/'))
      assert.equal(requests.filter(line => / PUT \S+\?digest=\S+ -> 201/.test(line)).length, 2, 'containerd should upload the layer and the config')
      assert.equal(requests.filter(line => line.includes(' PATCH ')).length, 0, 'containerd uploads with one PUT, without PATCH')
    })

    it('mirror in hosts.toml serves NS/NAME and falls back', async () => {
      await skopeo(['copy', '--dest-tls-verify=false', `oci:${fixturePath('micro-httpd')}:v2`, `docker://${a.info.registry}/mirror.test/demo/httpd:v2`])
      const hosts = join(folder, 'certs.d')
      await mkdir(join(hosts, 'mirror.test'), { recursive: true })
      await writeFile(join(hosts, 'mirror.test', 'hosts.toml'), [
        `server = "http://127.0.0.1:${CLOSED_LOOPBACK_PORT}"`,
        '',
        `[host."http://${b.info.registry ?? ''}"]`,
        '  capabilities = ["pull", "resolve"]'
      ].join('\n'))

      await client('ctr', [...ctr, 'images', 'pull', '--hosts-dir', hosts, '--snapshotter', 'native', 'mirror.test/demo/httpd:v2'])
      const listed = await client('ctr', [...ctr, 'images', 'ls'])
      assert.match(listed, new RegExp(`mirror.test/demo/httpd:v2\\s+\\S+\\s+${HTTPD_V2}`))

      // An unknown tag must reach the next host (the closed port) quickly instead of hanging on the mirror.
      const startedMs = Date.now()
      await assert.rejects(client('ctr', [...ctr, 'images', 'pull', '--hosts-dir', hosts, 'mirror.test/demo/httpd:v9']), /127\.0\.0\.1:9/)
      assert.ok(Date.now() - startedMs < 15_000, `fallback took ${Date.now() - startedMs} ms`)
    })
  })
})
