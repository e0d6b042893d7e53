/**
 * A small driver for the Matrix Client-Server API (spec v1.19, `/_matrix/client/v3`) that
 * works the same against `myelin-server` and Synapse: HTTPS trusting the test CA, one
 * logged-in user, the spec's request shapes only. Federation is asynchronous, so tests
 * pair it with {@link waitFor}.
 *
 * @module
 */

import * as https from "node:https";
import { randomUUID } from "node:crypto";

/** A client event as the CS API returns it (spec CS API § "Room Events": ClientEvent). */
/** A local user of either server, with its access token. */
export interface TestUser {
  readonly userId: string;
  readonly accessToken: string;
}

/** A client-format event (spec CS API § "Room Event Format"). */
export interface ClientEvent {
  readonly event_id: string;
  readonly type: string;
  readonly sender: string;
  readonly room_id: string;
  readonly origin_server_ts: number;
  readonly content: Record<string, unknown>;
  readonly state_key?: string;
  readonly unsigned?: Record<string, unknown>;
  readonly redacts?: string;
}

/** `GET /rooms/{roomId}/messages` (spec CS API § "Get events and state around a point"). */
export interface MessagesResponse {
  readonly chunk: readonly ClientEvent[];
  readonly start: string;
  readonly end?: string;
  readonly state?: readonly ClientEvent[];
}

/** `POST /createRoom` request body (the fields these tests use; any other is passed through). */
export interface CreateRoomRequest {
  readonly preset?: "private_chat" | "public_chat" | "trusted_private_chat";
  readonly room_version?: string;
  readonly invite?: readonly string[];
  readonly initial_state?: readonly { type: string; state_key?: string; content: Record<string, unknown> }[];
  readonly name?: string;
  readonly topic?: string;
  readonly room_alias_name?: string;
  readonly visibility?: "public" | "private";
  readonly power_level_content_override?: Record<string, unknown>;
  readonly [extra: string]: unknown;
}

/** Which layer a CS API call failed in. */
export type CsFailure =
  /** The server answered with a Matrix error body (`errcode`). */
  | "matrix-error"
  /** A non-2xx answer without a Matrix error body. */
  | "unexpected-status"
  /** A 2xx answer that is not JSON. */
  | "invalid-response"
  /** No answer: connection refused or reset, TLS failure, timeout. */
  | "transport";

/** Thrown by every {@link CsClient} method that does not get a 2xx JSON answer. */
export class CsRequestError extends Error {
  override readonly name = "CsRequestError";
  constructor(
    readonly reason: CsFailure,
    readonly method: string,
    readonly path: string,
    readonly status: number | undefined,
    readonly errcode: string | undefined,
    readonly body: unknown,
    message: string,
  ) {
    super(message);
  }
}

/** How to reach the server and who is asking. */
export interface CsClientOptions {
  /** `https://host:port`. */
  readonly baseUrl: string;
  /** PEM of the CA that signed the server's certificate. */
  readonly ca: string;
  readonly accessToken: string;
  readonly userId: string;
  /** Per-request deadline; default 30 s. */
  readonly timeoutMs?: number;
}

type Query = Readonly<Record<string, string | number | readonly string[] | undefined>>;

const enc = encodeURIComponent;

/** One user's Client-Server API session. Every method returns the JSON answer or throws {@link CsRequestError}. */
export class CsClient {
  readonly userId: string;
  private readonly url: URL;
  private readonly options: CsClientOptions;
  private readonly agent: https.Agent;

  constructor(options: CsClientOptions) {
    this.options = options;
    this.userId = options.userId;
    this.url = new URL(options.baseUrl);
    this.agent = new https.Agent({ keepAlive: true, ca: options.ca, maxSockets: 8 });
  }

  /** The server part of this user's ID. */
  get serverName(): string {
    return this.userId.slice(this.userId.indexOf(":") + 1);
  }

  /** Closes idle connections. */
  close(): void {
    this.agent.destroy();
  }

  /** `POST /createRoom`. */
  createRoom(body: CreateRoomRequest): Promise<{ room_id: string }> {
    return this.request("POST", "/createRoom", { body });
  }

  /** `POST /join/{roomIdOrAlias}` through the servers `via` (sent as `via` and the older `server_name`). */
  join(roomIdOrAlias: string, via: readonly string[] = []): Promise<{ room_id: string }> {
    return this.request("POST", `/join/${enc(roomIdOrAlias)}`, { query: { via, server_name: via }, body: {} });
  }

  /** `POST /rooms/{roomId}/invite`. */
  invite(roomId: string, userId: string, reason?: string): Promise<Record<string, never>> {
    return this.request("POST", `/rooms/${enc(roomId)}/invite`, { body: { user_id: userId, ...(reason === undefined ? {} : { reason }) } });
  }

  /** `POST /rooms/{roomId}/leave` (also declines an invite). */
  leave(roomId: string, reason?: string): Promise<Record<string, never>> {
    return this.request("POST", `/rooms/${enc(roomId)}/leave`, { body: reason === undefined ? {} : { reason } });
  }

  /** `POST /rooms/{roomId}/kick`. */
  kick(roomId: string, userId: string, reason?: string): Promise<Record<string, never>> {
    return this.request("POST", `/rooms/${enc(roomId)}/kick`, { body: { user_id: userId, ...(reason === undefined ? {} : { reason }) } });
  }

  /** `POST /rooms/{roomId}/ban`. */
  ban(roomId: string, userId: string, reason?: string): Promise<Record<string, never>> {
    return this.request("POST", `/rooms/${enc(roomId)}/ban`, { body: { user_id: userId, ...(reason === undefined ? {} : { reason }) } });
  }

  /** `POST /rooms/{roomId}/unban`. */
  unban(roomId: string, userId: string): Promise<Record<string, never>> {
    return this.request("POST", `/rooms/${enc(roomId)}/unban`, { body: { user_id: userId } });
  }

  /** `PUT /rooms/{roomId}/send/{eventType}/{txnId}`; a fresh transaction ID unless given. */
  sendEvent(roomId: string, type: string, content: Record<string, unknown>, txnId: string = randomUUID()): Promise<{ event_id: string }> {
    return this.request("PUT", `/rooms/${enc(roomId)}/send/${enc(type)}/${enc(txnId)}`, { body: content });
  }

  /** Sends an `m.room.message` of msgtype `m.text`. */
  sendMessage(roomId: string, body: string, txnId?: string): Promise<{ event_id: string }> {
    return this.sendEvent(roomId, "m.room.message", { msgtype: "m.text", body }, txnId);
  }

  /** `PUT /rooms/{roomId}/state/{eventType}/{stateKey}`. */
  putState(roomId: string, type: string, stateKey: string, content: Record<string, unknown>): Promise<{ event_id: string }> {
    return this.request("PUT", `/rooms/${enc(roomId)}/state/${enc(type)}/${enc(stateKey)}`, { body: content });
  }

  /** `GET /rooms/{roomId}/state/{eventType}/{stateKey}`: the content of that state event. */
  getState<T = Record<string, unknown>>(roomId: string, type: string, stateKey = ""): Promise<T> {
    return this.request("GET", `/rooms/${enc(roomId)}/state/${enc(type)}/${enc(stateKey)}`);
  }

  /** `GET /rooms/{roomId}/state`: every current state event. */
  roomState(roomId: string): Promise<ClientEvent[]> {
    return this.request("GET", `/rooms/${enc(roomId)}/state`);
  }

  /** `PUT /rooms/{roomId}/redact/{eventId}/{txnId}`. */
  redact(roomId: string, eventId: string, reason?: string, txnId: string = randomUUID()): Promise<{ event_id: string }> {
    return this.request("PUT", `/rooms/${enc(roomId)}/redact/${enc(eventId)}/${enc(txnId)}`, { body: reason === undefined ? {} : { reason } });
  }

  /** `GET /rooms/{roomId}/messages`; `dir` defaults to `b` (newest first). */
  messages(roomId: string, options: { dir?: "b" | "f"; from?: string; to?: string; limit?: number } = {}): Promise<MessagesResponse> {
    return this.request("GET", `/rooms/${enc(roomId)}/messages`, {
      query: { dir: options.dir ?? "b", from: options.from, to: options.to, limit: options.limit },
    });
  }

  /**
   * The room's whole visible timeline, oldest first, by paginating `/messages` backwards
   * until the server returns no `end` (spec: no more events), at most `maxPages` pages.
   */
  async timeline(roomId: string, options: { pageSize?: number; maxPages?: number } = {}): Promise<ClientEvent[]> {
    const events: ClientEvent[] = [];
    let from: string | undefined;
    for (let page = 0; page < (options.maxPages ?? 50); page++) {
      const response = await this.messages(roomId, { dir: "b", limit: options.pageSize ?? 100, ...(from === undefined ? {} : { from }) });
      events.push(...response.chunk);
      if (response.end === undefined || response.chunk.length === 0) break;
      from = response.end;
    }
    return events.reverse();
  }

  /** `GET /rooms/{roomId}/event/{eventId}`. */
  event(roomId: string, eventId: string): Promise<ClientEvent> {
    return this.request("GET", `/rooms/${enc(roomId)}/event/${enc(eventId)}`);
  }

  /** `GET /joined_rooms`. */
  async joinedRooms(): Promise<string[]> {
    return (await this.request<{ joined_rooms: string[] }>("GET", "/joined_rooms")).joined_rooms;
  }

  /** `PUT /directory/room/{roomAlias}`. */
  putAlias(alias: string, roomId: string): Promise<Record<string, never>> {
    return this.request("PUT", `/directory/room/${enc(alias)}`, { body: { room_id: roomId } });
  }

  /** `GET /directory/room/{roomAlias}`. */
  getAlias(alias: string): Promise<{ room_id: string; servers: string[] }> {
    return this.request("GET", `/directory/room/${enc(alias)}`);
  }

  /** `GET /profile/{userId}`. */
  getProfile(userId: string): Promise<{ displayname?: string; avatar_url?: string }> {
    return this.request("GET", `/profile/${enc(userId)}`);
  }

  /** `PUT /profile/{userId}/displayname` for this user. */
  setDisplayName(displayname: string): Promise<Record<string, never>> {
    return this.request("PUT", `/profile/${enc(this.userId)}/displayname`, { body: { displayname } });
  }

  /** Any CS API call under `/_matrix/client/v3`. */
  request<T>(method: string, path: string, options: { query?: Query; body?: unknown } = {}): Promise<T> {
    return this.raw<T>(method, `/_matrix/client/v3${path}`, options);
  }

  /** Any call, by full path (e.g. `/_synapse/admin/v1/register`, `/_matrix/key/v2/query/...`). */
  raw<T>(method: string, path: string, options: { query?: Query; body?: unknown } = {}): Promise<T> {
    const fullPath = `${path}${formatQuery(options.query ?? {})}`;
    const payload = options.body === undefined ? undefined : Buffer.from(JSON.stringify(options.body), "utf8");
    return this.send<T>(method, fullPath, payload, true);
  }

  private send<T>(method: string, path: string, payload: Buffer | undefined, mayRetry: boolean): Promise<T> {
    const label = `${method} ${path} as ${this.userId} on ${this.url.host}`;
    // Synapse's remote joins can take a while: 30 s unless the client says otherwise.
    const timeoutMs = this.options.timeoutMs ?? 30_000;
    return new Promise<T>((resolve, reject) => {
      const req = https.request(
        {
          host: this.url.hostname,
          port: this.url.port,
          method,
          path,
          agent: this.agent,
          servername: "localhost",
          timeout: timeoutMs,
          headers: {
            ...(this.options.accessToken === "" ? {} : { Authorization: `Bearer ${this.options.accessToken}` }),
            Accept: "application/json",
            ...(payload === undefined ? {} : { "Content-Type": "application/json", "Content-Length": String(payload.byteLength) }),
          },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (chunk: Buffer) => chunks.push(chunk));
          res.on("error", (error) => reject(new CsRequestError("transport", method, path, undefined, undefined, undefined, `${label}: ${error.message}`)));
          res.on("end", () => {
            const status = res.statusCode ?? 0;
            const text = Buffer.concat(chunks).toString("utf8");
            let body: unknown;
            try {
              body = text === "" ? undefined : JSON.parse(text);
            } catch {
              body = undefined;
            }
            if (status >= 200 && status < 300) {
              if (body === undefined) {
                reject(new CsRequestError("invalid-response", method, path, status, undefined, text, `${label}: ${status} with a body that is not JSON: ${text.slice(0, 200)}`));
              } else {
                resolve(body as T);
              }
              return;
            }
            const errcode = isObject(body) && typeof body["errcode"] === "string" ? body["errcode"] : undefined;
            const error = isObject(body) && typeof body["error"] === "string" ? `: ${body["error"]}` : "";
            reject(
              errcode === undefined
                ? new CsRequestError("unexpected-status", method, path, status, undefined, body ?? text, `${label}: HTTP ${status} without a Matrix error: ${text.slice(0, 200)}`)
                : new CsRequestError("matrix-error", method, path, status, errcode, body, `${label}: ${status} ${errcode}${error}`),
            );
          });
        },
      );
      req.on("timeout", () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
      req.on("error", (error: NodeJS.ErrnoException) => {
        // A kept-alive connection the server closed (e.g. it was restarted) fails on reuse;
        // Node's documented remedy is to retry once on a new connection.
        if (mayRetry && req.reusedSocket && (error.code === "ECONNRESET" || error.code === "EPIPE")) {
          this.send<T>(method, path, payload, false).then(resolve, reject);
          return;
        }
        reject(new CsRequestError("transport", method, path, undefined, undefined, undefined, `${label}: ${error.message}`));
      });
      req.end(payload);
    });
  }
}

function formatQuery(query: Query): string {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) {
    if (value === undefined) continue;
    if (Array.isArray(value)) for (const item of value as readonly string[]) params.append(key, item);
    else params.append(key, String(value));
  }
  const text = params.toString();
  return text === "" ? "" : `?${text}`;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Options of {@link waitFor}. */
export interface WaitOptions {
  /** What is awaited, for the failure message ("B sees message m1"). */
  readonly what: string;
  /** Default 30 s (a Synapse peer can be slow to react). */
  readonly timeoutMs?: number;
  /** Pause between attempts; default 100 ms. */
  readonly intervalMs?: number;
}

/**
 * Polls `probe` until it returns something other than `undefined`/`false` and returns
 * that. A probe that throws counts as "not yet" (the error is kept for the report). On
 * timeout, throws naming what was awaited, the last value and the last error.
 */
export async function waitFor<T>(probe: () => Promise<T | undefined | false> | T | undefined | false, options: WaitOptions): Promise<T> {
  const timeoutMs = options.timeoutMs ?? 30_000;
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  let lastValue: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined && value !== false) return value;
      lastValue = value;
      lastError = undefined;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() >= deadline) break;
    await new Promise((resolve) => setTimeout(resolve, options.intervalMs ?? 100));
  }
  const detail = lastError === undefined ? `last result: ${String(lastValue)}` : `last error: ${(lastError as Error).message ?? String(lastError)}`;
  throw new Error(`timed out after ${timeoutMs} ms waiting until ${options.what} (${detail})`);
}
