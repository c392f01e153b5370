/** The API base, `GET /v2/`, which clients call first to learn that this is a registry. */
import { API_VERSION } from './constants.js'
import { sendJson } from './http.js'
import type { MethodHandlers } from './context.js'

/** Handlers of `/v2/`. There is no authentication, so every client gets 200. */
export const pingHandlers: MethodHandlers<'ping'> = {
  GET: async ({ req, res }) => {
    sendJson(res, 200, {}, { 'Docker-Distribution-API-Version': API_VERSION }, req.method === 'HEAD')
  }
}
