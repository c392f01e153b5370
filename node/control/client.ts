/**
 * The CLI side of the control API. It imports nothing from libp2p, so that
 * commands which only ask the agent start in a few tens of milliseconds.
 */
import { request as httpRequest, type IncomingMessage } from 'node:http'
import { readAgentFile, isProcessAlive, type AgentFile } from '../agent/agent-file.js'
import { AgentNotRunningError } from '../config/errors.js'
import { dataDirPaths } from '../config/paths.js'
import { CONTROL_PREFIX, type ControlErrorBody, type PullEvent } from './protocol.js'
import type { AbortOptions } from '@libp2p/interface'

/** An error the agent returned, with the name of its error class. */
export class ControlRequestError extends Error {
  constructor (readonly status: number, readonly errorName: string, message: string) {
    super(message)
    this.name = errorName
  }
}

export class ControlClient {
  private constructor (readonly dir: string, readonly agent: AgentFile, private readonly socketPath: string) {}

  /** Connects to the agent of a data directory, or throws AgentNotRunningError with the command to start one. */
  static async connect (dir: string): Promise<ControlClient> {
    const startHint = `start one with "kilomesh agent --dir ${dir}"`
    const agent = await readAgentFile(dataDirPaths(dir).agentFile)
    if (agent == null) {
      throw new AgentNotRunningError(`no agent is running for ${dir}; ${startHint}`)
    }
    if (!isProcessAlive(agent.pid)) {
      throw new AgentNotRunningError(`the agent for ${dir} (pid ${agent.pid}) is no longer running; ${startHint}`)
    }
    if (!agent.control.startsWith('unix:')) {
      throw new AgentNotRunningError(`agent.json in ${dir} names an unsupported control address ${JSON.stringify(agent.control)}`)
    }
    return new ControlClient(dir, agent, agent.control.slice('unix:'.length))
  }

  async get<T> (path: string, options?: AbortOptions): Promise<T> {
    return this.json<T>('GET', path, undefined, options)
  }

  async post<T> (path: string, body: unknown, options?: AbortOptions): Promise<T> {
    return this.json<T>('POST', path, body, options)
  }

  /** Sends a pull and calls `onEvent` for each progress line; returns the result line's value. */
  async pull<T> (body: unknown, onEvent: (event: PullEvent) => void, options?: AbortOptions): Promise<T> {
    const response = await this.send('POST', '/pull', body, options)
    if (response.statusCode !== 200) {
      throw await this.errorOf(response)
    }

    let buffered = ''
    let outcome: PullEvent | undefined
    for await (const chunk of response) {
      buffered += (chunk as Buffer).toString('utf8')
      let newline = buffered.indexOf('\n')
      while (newline !== -1) {
        const event = JSON.parse(buffered.slice(0, newline)) as PullEvent
        buffered = buffered.slice(newline + 1)
        if (event.type === 'progress') {
          onEvent(event)
        } else {
          outcome = event
        }
        newline = buffered.indexOf('\n')
      }
    }

    if (outcome?.type === 'result') {
      return outcome.result as T
    }
    if (outcome?.type === 'error') {
      throw new ControlRequestError(500, outcome.error.name, outcome.error.message)
    }
    throw new AgentNotRunningError(`the agent for ${this.dir} closed the connection before the pull finished; check its log`)
  }

  private async json<T> (method: string, path: string, body: unknown, options?: AbortOptions): Promise<T> {
    const response = await this.send(method, path, body, options)
    if (response.statusCode !== 200) {
      throw await this.errorOf(response)
    }
    return JSON.parse(await readText(response)) as T
  }

  private async errorOf (response: IncomingMessage): Promise<ControlRequestError> {
    const text = await readText(response)
    try {
      const body = JSON.parse(text) as ControlErrorBody
      return new ControlRequestError(response.statusCode ?? 500, body.error.name, body.error.message)
    } catch {
      return new ControlRequestError(response.statusCode ?? 500, 'Error', `agent answered HTTP ${response.statusCode}: ${text.slice(0, 200)}`)
    }
  }

  private async send (method: string, path: string, body: unknown, options?: AbortOptions): Promise<IncomingMessage> {
    const payload = body == null ? undefined : JSON.stringify(body)
    return new Promise<IncomingMessage>((resolve, reject) => {
      const request = httpRequest({
        socketPath: this.socketPath,
        path: `${CONTROL_PREFIX}${path}`,
        method,
        signal: options?.signal,
        headers: payload == null ? {} : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) }
      }, resolve)
      request.once('error', (err: NodeJS.ErrnoException) => {
        if (err.code === 'ECONNREFUSED' || err.code === 'ENOENT') {
          reject(new AgentNotRunningError(`the agent for ${this.dir} does not accept connections on ${this.socketPath}; restart it with "kilomesh agent --dir ${this.dir}"`))
          return
        }
        reject(err)
      })
      request.end(payload)
    })
  }
}

async function readText (response: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = []
  for await (const chunk of response) {
    chunks.push(chunk as Buffer)
  }
  return Buffer.concat(chunks).toString('utf8')
}
