/**
 * Child processes for the start, memory and CLI benchmarks: spawn a command
 * and time it until a file appears or until it exits, read a process's
 * resident memory, and stop what was started.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { watch } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { basename, dirname } from 'node:path'

/** Interval of the fallback poll for a file, in case the file system sends no watch event. */
const FILE_POLL_INTERVAL_MS = 50

/** Time a stopped process has to exit after SIGTERM before it gets SIGKILL. */
const STOP_TIMEOUT_MS = 10_000

/** A process the benchmark started, with everything it printed, for error messages. */
export interface StartedProcess {
  child: ChildProcess
  output: () => string
  exited: Promise<number | null>
}

/** Spawns `node args...` with piped output. */
export function spawnNode (args: string[], env: NodeJS.ProcessEnv = {}): StartedProcess {
  const child = spawn(process.execPath, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  child.stdout?.on('data', (chunk: Buffer) => { output += chunk.toString() })
  child.stderr?.on('data', (chunk: Buffer) => { output += chunk.toString() })
  const exited = new Promise<number | null>(resolve => child.once('exit', code => { resolve(code) }))
  return { child, output: () => output, exited }
}

/**
 * Spawns `node args...` and resolves once `path` contains what `accept`
 * expects, such as an agent.json naming the child's pid. It watches the
 * file's folder, so an atomic rename is noticed when it happens rather than
 * at the next fallback poll.
 */
export async function spawnUntilFile (args: string[], path: string, accept: (content: string, child: ChildProcess) => boolean, timeoutMs: number): Promise<StartedProcess> {
  const started = spawnNode(args)
  let watcher: ReturnType<typeof watch> | undefined
  let poll: NodeJS.Timeout | undefined
  let deadline: NodeJS.Timeout | undefined

  try {
    await new Promise<void>((resolve, reject) => {
      let settled = false
      const check = (): void => {
        void readFile(path, 'utf8').then(content => {
          if (!settled && accept(content, started.child)) {
            settled = true
            resolve()
          }
        }, () => {
          // Not written yet, or removed by a previous run's clean stop.
        })
      }

      watcher = watch(dirname(path), (_event, name) => {
        if (name === basename(path)) {
          check()
        }
      })
      poll = setInterval(check, FILE_POLL_INTERVAL_MS)
      deadline = setTimeout(() => {
        reject(new Error(`${path} was not written within ${timeoutMs} ms; output:\n${started.output()}`))
      }, timeoutMs)
      // A process may exit right after writing the file, before the watch
      // event arrives: look at the file once more before calling it a failure.
      void started.exited.then(async code => {
        const content = await readFile(path, 'utf8').catch(() => '')
        if (!settled && accept(content, started.child)) {
          settled = true
          resolve()
          return
        }
        reject(new Error(`process exited with code ${code} before writing ${path}; output:\n${started.output()}`))
      })
    })
  } catch (err) {
    await stopProcess(started)
    throw err
  } finally {
    watcher?.close()
    clearInterval(poll)
    clearTimeout(deadline)
  }
  return started
}

/** Spawns `node args...`, waits for it to exit with status 0, and returns its output. */
export async function runNodeToExit (args: string[], timeoutMs: number, env: NodeJS.ProcessEnv = {}): Promise<string> {
  const started = spawnNode(args, env)
  const timer = setTimeout(() => { started.child.kill('SIGKILL') }, timeoutMs)
  const code = await started.exited.finally(() => { clearTimeout(timer) })
  if (code !== 0) {
    throw new Error(`node ${args.join(' ')} exited with code ${code}; output:\n${started.output()}`)
  }
  return started.output()
}

/** Sends SIGTERM and waits for the exit, escalating to SIGKILL after STOP_TIMEOUT_MS. */
export async function stopProcess (started: StartedProcess): Promise<void> {
  const { child } = started
  if (child.exitCode != null || child.signalCode != null) {
    return
  }

  child.kill('SIGTERM')
  const timer = setTimeout(() => { child.kill('SIGKILL') }, STOP_TIMEOUT_MS)
  await started.exited.finally(() => { clearTimeout(timer) })
}

/** Reads a process's resident set size from the VmRSS line of /proc/PID/status (Linux only). */
export async function readRssBytes (pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8')
  const match = /^VmRSS:\s+(\d+)\s+kB$/m.exec(status)
  if (match?.[1] == null) {
    throw new Error(`/proc/${pid}/status has no VmRSS line; resident memory can only be read on Linux`)
  }
  return Number(match[1]) * 1024
}
