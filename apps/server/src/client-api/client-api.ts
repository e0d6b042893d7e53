/**
 * The Client-Server API subset that lets Matrix tools and tests drive the server: versions,
 * whoami, capabilities, createRoom, join/invite/leave/kick/ban/unban, send, state, redact,
 * messages, event, joined_rooms, members, directory aliases and profiles, under
 * `/_matrix/client/v3` (and `r0`, which older tools still use).
 *
 * Spec: client-server API v1.19; shapes from data/api/client-server/*.yaml.
 *
 * @module
 */

import type { JsonObject, JsonValue } from "@myelin/types";
import { MatrixError, ROOM_VERSIONS, isValidRoomAlias, isValidRoomId, isValidUserId } from "@myelin/types";
import type { RequestHandler } from "express";
import type { CreateRoomOptions, EngineEvent, InitialStateEvent, RoomEngine, RoomPreset } from "../engine/index.js";
import { serverOf } from "../engine/index.js";
import type { Logger } from "../log.js";
import { silentLogger } from "../log.js";
import type { AccessTokenOwner, ChildDepthRange, Storage, TimelinePosition } from "../storage/storage.js";
import { StorageError } from "../storage/storage.js";
import { toClientEvent } from "./client-event.js";
import { comparePositions, formatPaginationToken, parsePaginationToken } from "./pagination-token.js";
import type { RemoteHistory, RemoteMembership, RemoteQueries } from "./remote.js";
import { federationUnavailable } from "./remote.js";
import type { Route, RouteRequest, RouteResponse } from "./routing.js";
import { createRouteHandler } from "./routing.js";
import { accessTokenOf, authenticate } from "./users.js";

/** The spec versions `/versions` advertises: the subset here follows their paths and shapes. */
export const CLIENT_VERSIONS = ["r0.6.1", "v1.1", "v1.2", "v1.3", "v1.4", "v1.5", "v1.6", "v1.7", "v1.8", "v1.9", "v1.10", "v1.11"] as const;

/** Default and largest `limit` of `/messages` (Synapse caps it at 1000 too). */
const DEFAULT_MESSAGES_LIMIT = 10;
const MAX_MESSAGES_LIMIT = 1000;
/** Most backfill rounds one `/messages` request waits for (each places up to 100 events). */
const MAX_BACKFILL_ROUNDS = 10;

/** Options of {@link createClientApi}. */
export interface ClientApiOptions {
  readonly engine: RoomEngine;
  readonly storage: Storage;
  readonly serverName: string;
  /** Joins, invites and leaves through other servers; without it they answer 404 M_NOT_FOUND. */
  readonly remoteMembership?: RemoteMembership | undefined;
  /** Remote alias and profile look-ups; without it they answer 404 M_NOT_FOUND. */
  readonly remoteQueries?: RemoteQueries | undefined;
  /** Older history from other servers for `/messages`; without it, pagination stops at what is stored. */
  readonly remoteHistory?: RemoteHistory | undefined;
  readonly logger?: Logger;
  readonly now?: () => number;
}

/**
 * An express handler for `/_matrix/client/...`; other paths go to `next()`. Mount it before
 * the federation router (which answers every other path with 404).
 */
export function createClientApi(options: ClientApiOptions): RequestHandler {
  const { engine, storage, serverName } = options;
  const now = options.now ?? Date.now;
  const logger = options.logger ?? silentLogger;

  const user = async (request: RouteRequest): Promise<AccessTokenOwner> =>
    authenticate(storage, accessTokenOf(request.headers.authorization, request.query));
  const ok = (body: unknown = {}): RouteResponse => ({ body });
  const localAliasParam = (request: RouteRequest): string => localAliasParamOf(request, serverName);

  const routes: Route[] = [
    { method: "GET", path: "/account/whoami", handler: async (request) => {
      const owner = await user(request);
      return ok({ user_id: owner.userId, device_id: owner.deviceId, is_guest: false });
    } },
    { method: "GET", path: "/capabilities", handler: async (request) => {
      await user(request);
      const available: JsonObject = {};
      for (const [id, rules] of Object.entries(ROOM_VERSIONS)) available[id] = rules.stability;
      return ok({ capabilities: { "m.room_versions": { default: engine.defaultRoomVersion, available }, "m.change_password": { enabled: false } } });
    } },

    // ---- rooms
    { method: "POST", path: "/createRoom", handler: async (request) => {
      const owner = await user(request);
      const options = readCreateRoom(await request.body(), owner.userId, serverName);
      const remoteInvitees = (options.invite ?? []).filter((u) => !engine.isLocalUser(u));
      if (remoteInvitees.length > 0 && remote === undefined) {
        throw federationUnavailable(`${remoteInvitees.join(", ")} can only be invited through federation`);
      }
      const created = await engine.createRoom(options);
      for (const target of created.remoteInvitees) {
        try {
          await remote?.invite({ roomId: created.roomId, sender: owner.userId, target, content: { membership: "invite", ...(options.isDirect === true ? { is_direct: true } : {}) } });
        } catch (error) {
          // The room exists: a failed remote invite does not undo it (Synapse also keeps the room).
          logger.warn("createRoom: remote invite failed", { roomId: created.roomId, target, error: (error as Error).message });
        }
      }
      return ok({ room_id: created.roomId });
    } },
    { method: "POST", path: "/join/:roomIdOrAlias", handler: async (request) => {
      const owner = await user(request);
      const via = [...request.queryAll("via"), ...request.queryAll("server_name")];
      return ok({ room_id: await join(owner, request.params["roomIdOrAlias"] as string, via, await request.body()) });
    } },
    { method: "POST", path: "/rooms/:roomId/join", handler: async (request) => {
      const owner = await user(request);
      const roomId = roomIdParam(request);
      return ok({ room_id: await join(owner, roomId, [...request.queryAll("via"), ...request.queryAll("server_name")], await request.body()) });
    } },
    { method: "POST", path: "/rooms/:roomId/invite", handler: async (request) => {
      const owner = await user(request);
      const roomId = roomIdParam(request);
      const body = await request.body();
      const target = userIdField(body, "user_id");
      const reason = optionalString(body, "reason");
      if (engine.isLocalUser(target)) {
        await engine.invite(roomId, owner.userId, target, { reason });
      } else {
        if (remote === undefined) throw federationUnavailable(`${target} is on another server`);
        await remote.invite({ roomId, sender: owner.userId, target, content: { membership: "invite", ...(reason === undefined ? {} : { reason }) } });
      }
      return ok();
    } },
    { method: "POST", path: "/rooms/:roomId/leave", handler: async (request) => {
      const owner = await user(request);
      const roomId = roomIdParam(request);
      const reason = optionalString(await request.body(), "reason");
      if (await engine.isResident(roomId)) {
        await engine.leave(roomId, owner.userId, { reason });
      } else if (remote !== undefined) {
        const servers = await candidateServers(roomId, owner.userId, []);
        await remote.leave({ roomId, userId: owner.userId, servers, content: { membership: "leave", ...(reason === undefined ? {} : { reason }) } });
      } else if ((await engine.getRoom(roomId)) !== undefined) {
        await engine.leave(roomId, owner.userId, { reason });
      } else {
        throw federationUnavailable(`room ${roomId} is not known here`);
      }
      return ok();
    } },
    { method: "POST", path: "/rooms/:roomId/kick", handler: async (request) => {
      const owner = await user(request);
      const body = await request.body();
      await engine.kick(roomIdParam(request), owner.userId, userIdField(body, "user_id"), { reason: optionalString(body, "reason") });
      return ok();
    } },
    { method: "POST", path: "/rooms/:roomId/ban", handler: async (request) => {
      const owner = await user(request);
      const body = await request.body();
      await engine.ban(roomIdParam(request), owner.userId, userIdField(body, "user_id"), { reason: optionalString(body, "reason") });
      return ok();
    } },
    { method: "POST", path: "/rooms/:roomId/unban", handler: async (request) => {
      const owner = await user(request);
      const body = await request.body();
      await engine.unban(roomIdParam(request), owner.userId, userIdField(body, "user_id"), { reason: optionalString(body, "reason") });
      return ok();
    } },
    { method: "PUT", path: "/rooms/:roomId/send/:eventType/:txnId", handler: async (request) => {
      const owner = await user(request);
      const event = await engine.sendLocalEvent({
        roomId: roomIdParam(request),
        sender: owner.userId,
        type: request.params["eventType"] as string,
        content: await request.body(),
        txn: { deviceId: owner.deviceId, txnId: txnKey(request, "send", request.params["eventType"] as string) },
      });
      return ok({ event_id: event.eventId });
    } },
    { method: "PUT", path: "/rooms/:roomId/state/:eventType", handler: (request) => putState(request, "") },
    { method: "PUT", path: "/rooms/:roomId/state/:eventType/:stateKey", handler: (request) => putState(request, request.params["stateKey"] as string) },
    { method: "GET", path: "/rooms/:roomId/state/:eventType", handler: (request) => getStateEvent(request, "") },
    { method: "GET", path: "/rooms/:roomId/state/:eventType/:stateKey", handler: (request) => getStateEvent(request, request.params["stateKey"] as string) },
    { method: "GET", path: "/rooms/:roomId/state", handler: async (request) => {
      const owner = await user(request);
      const state = await readableState(roomIdParam(request), owner.userId);
      return ok(await formatEvents(state));
    } },
    { method: "GET", path: "/rooms/:roomId/event/:eventId", handler: async (request) => {
      const owner = await user(request);
      const roomId = roomIdParam(request);
      const eventId = request.params["eventId"] as string;
      const event = await engine.getEvent(eventId);
      const visible =
        event !== undefined && event.roomId === roomId && !event.stored.outlier && event.stored.rejectedReason === null && !event.stored.softFailed &&
        (await engine.canUserSeeEvent(owner.userId, event));
      if (!visible) throw new MatrixError("M_NOT_FOUND", "Event not found");
      return ok((await formatEvents([event]))[0]);
    } },
    { method: "PUT", path: "/rooms/:roomId/redact/:eventId/:txnId", handler: async (request) => {
      const owner = await user(request);
      const body = await request.body();
      const event = await engine.redact({
        roomId: roomIdParam(request),
        sender: owner.userId,
        eventId: request.params["eventId"] as string,
        reason: optionalString(body, "reason"),
        txn: { deviceId: owner.deviceId, txnId: txnKey(request, "redact", request.params["eventId"] as string) },
      });
      return ok({ event_id: event.eventId });
    } },
    { method: "GET", path: "/rooms/:roomId/messages", handler: async (request) => messages(request) },
    { method: "GET", path: "/joined_rooms", handler: async (request) => {
      const owner = await user(request);
      return ok({ joined_rooms: await engine.getJoinedRooms(owner.userId) });
    } },
    { method: "GET", path: "/rooms/:roomId/joined_members", handler: async (request) => {
      const owner = await user(request);
      const roomId = roomIdParam(request);
      await requireMembership(roomId, owner.userId, ["join"]);
      const joined: JsonObject = {};
      for (const [member, content] of await engine.getJoinedMembers(roomId)) {
        const entry: JsonObject = {};
        if (typeof content["displayname"] === "string") entry["display_name"] = content["displayname"];
        if (typeof content["avatar_url"] === "string") entry["avatar_url"] = content["avatar_url"];
        joined[member] = entry;
      }
      return ok({ joined });
    } },
    { method: "GET", path: "/rooms/:roomId/members", handler: async (request) => {
      const owner = await user(request);
      const state = await readableState(roomIdParam(request), owner.userId);
      const members = state.filter((event) => event.stored.type === "m.room.member");
      return ok({ chunk: await formatEvents(members) });
    } },

    // ---- directory
    { method: "PUT", path: "/directory/room/:roomAlias", handler: async (request) => {
      const owner = await user(request);
      const alias = localAliasParam(request);
      const roomId = stringField(await request.body(), "room_id");
      if (!isValidRoomId(roomId)) throw new MatrixError("M_INVALID_PARAM", `${roomId} is not a room ID`);
      if ((await engine.getRoom(roomId)) === undefined) throw new MatrixError("M_NOT_FOUND", `room ${roomId} is not known here`);
      try {
        await storage.transaction((tx) => tx.putAlias(alias, roomId, owner.userId));
      } catch (error) {
        // directory.yaml: 409 for an alias that exists (the example's errcode is M_UNKNOWN).
        if (error instanceof StorageError && error.reason === "conflict") throw new MatrixError("M_UNKNOWN", `Room alias ${alias} already exists`, { status: 409 });
        throw error;
      }
      return ok();
    } },
    { method: "GET", path: "/directory/room/:roomAlias", handler: async (request) => {
      const alias = aliasParam(request);
      if (serverOf(alias) !== serverName) {
        if (queries === undefined) throw federationUnavailable(`${alias} belongs to another server`);
        const found = await queries.resolveAlias(alias);
        if (found === undefined) throw new MatrixError("M_NOT_FOUND", `Room alias ${alias} not found`);
        return ok({ room_id: found.roomId, servers: [...found.servers] });
      }
      const row = await storage.transaction((tx) => tx.getAlias(alias));
      if (row === undefined) throw new MatrixError("M_NOT_FOUND", `Room alias ${alias} not found`);
      return ok({ room_id: row.roomId, servers: await aliasServers(row.roomId) });
    } },
    { method: "DELETE", path: "/directory/room/:roomAlias", handler: async (request) => {
      const owner = await user(request);
      const alias = localAliasParam(request);
      await storage.transaction(async (tx) => {
        const row = await tx.getAlias(alias);
        if (row === undefined) throw new MatrixError("M_NOT_FOUND", `Room alias ${alias} not found`);
        if (row.creator !== owner.userId) throw new MatrixError("M_FORBIDDEN", "Only the alias's creator can delete it");
        await tx.deleteAlias(alias);
      });
      return ok();
    } },
    { method: "GET", path: "/rooms/:roomId/aliases", handler: async (request) => {
      const owner = await user(request);
      const roomId = roomIdParam(request);
      await readableState(roomId, owner.userId);
      return ok({ aliases: await storage.transaction((tx) => tx.listAliases(roomId)) });
    } },

    // ---- profile
    { method: "GET", path: "/profile/:userId", handler: async (request) => ok(await profileOf(userIdParam(request))) },
    { method: "GET", path: "/profile/:userId/:keyName", handler: async (request) => {
      const key = request.params["keyName"] as string;
      const profile = await profileOf(userIdParam(request), key);
      if (!Object.hasOwn(profile, key)) throw new MatrixError("M_NOT_FOUND", `The profile has no ${key}`);
      return ok({ [key]: profile[key] as JsonValue });
    } },
    { method: "PUT", path: "/profile/:userId/:keyName", handler: async (request) => {
      const field = await ownProfileField(request);
      const value = (await request.body())[field.key];
      if (value === undefined) throw new MatrixError("M_MISSING_PARAM", `The body has no ${field.key}`);
      if (typeof value !== "string" && value !== null) throw new MatrixError("M_INVALID_PARAM", `${field.key} must be a string`);
      await setProfile(field.userId, field.column, value);
      return ok();
    } },
    { method: "DELETE", path: "/profile/:userId/:keyName", handler: async (request) => {
      const field = await ownProfileField(request);
      await setProfile(field.userId, field.column, null);
      return ok();
    } },
  ];

  const remote = options.remoteMembership;
  const queries = options.remoteQueries;
  const history = options.remoteHistory;

  // ---- helpers (closures over the engine and storage)

  async function join(owner: AccessTokenOwner, roomIdOrAlias: string, via: readonly string[], body: JsonObject): Promise<string> {
    const reason = optionalString(body, "reason");
    let roomId: string;
    let servers = [...via];
    if (roomIdOrAlias.startsWith("#")) {
      if (!isValidRoomAlias(roomIdOrAlias)) throw new MatrixError("M_INVALID_PARAM", `${roomIdOrAlias} is not a room alias`);
      if (serverOf(roomIdOrAlias) === serverName) {
        const row = await storage.transaction((tx) => tx.getAlias(roomIdOrAlias));
        if (row === undefined) throw new MatrixError("M_NOT_FOUND", `Room alias ${roomIdOrAlias} not found`);
        roomId = row.roomId;
      } else {
        if (queries === undefined) throw federationUnavailable(`${roomIdOrAlias} belongs to another server`);
        const found = await queries.resolveAlias(roomIdOrAlias);
        if (found === undefined) throw new MatrixError("M_NOT_FOUND", `Room alias ${roomIdOrAlias} not found`);
        roomId = found.roomId;
        servers = [...servers, ...found.servers];
      }
    } else {
      if (!isValidRoomId(roomIdOrAlias)) throw new MatrixError("M_INVALID_PARAM", `${roomIdOrAlias} is not a room ID or alias`);
      roomId = roomIdOrAlias;
    }
    const known = (await engine.getRoom(roomId)) !== undefined;
    if (known && (await engine.isResident(roomId))) {
      await engine.join(roomId, owner.userId, { reason });
      return roomId;
    }
    if (remote !== undefined) {
      const content: JsonObject = { membership: "join" };
      if (reason !== undefined) content["reason"] = reason;
      const result = await remote.join({ roomId, userId: owner.userId, servers: await candidateServers(roomId, owner.userId, servers), content });
      return result.roomId;
    }
    if (known) {
      // No federation: a room we know but have no member in can only be joined locally.
      await engine.join(roomId, owner.userId, { reason });
      return roomId;
    }
    throw federationUnavailable(`room ${roomId} is not known here`);
  }

  /**
   * Servers to try for a remote join or leave, in order: the given ones (`via`,
   * `server_name`, the alias's), the inviter's when the user has a pending invite (then the
   * servers of the senders of the invite's stripped state, e.g. the room's creator), the
   * servers of the member event's sender and of the joined members this server knows of,
   * and the room ID's server (rooms 1-11; room-12 IDs name none, so an invited user can
   * join without `via` only thanks to the invite).
   */
  async function candidateServers(roomId: string, userId: string, given: readonly string[]): Promise<string[]> {
    const servers = [...given];
    if ((await engine.getRoom(roomId)) !== undefined) {
      const invite = await engine.getPendingInvite(roomId, userId);
      if (invite !== undefined) {
        servers.push(serverOf(invite.inviter));
        for (const entry of invite.inviteRoomState) if (typeof entry["sender"] === "string") servers.push(serverOf(entry["sender"]));
      }
      const membership = await engine.getMembership(roomId, userId).catch(() => undefined);
      if (membership !== undefined) servers.push(serverOf(membership.event.stored.sender));
      for (const server of await engine.getJoinedServers(roomId)) servers.push(server);
    }
    if (roomId.includes(":")) servers.push(serverOf(roomId));
    return [...new Set(servers)].filter((server) => server !== serverName);
  }

  async function putState(request: RouteRequest, key: string): Promise<RouteResponse> {
    const owner = await user(request);
    const event = await engine.sendLocalEvent({
      roomId: roomIdParam(request),
      sender: owner.userId,
      type: request.params["eventType"] as string,
      stateKey: key,
      content: await request.body(),
    });
    return ok({ event_id: event.eventId });
  }

  async function getStateEvent(request: RouteRequest, key: string): Promise<RouteResponse> {
    const owner = await user(request);
    const type = request.params["eventType"] as string;
    const state = await readableState(roomIdParam(request), owner.userId);
    const event = state.find((e) => e.stored.type === type && e.stored.stateKey === key);
    if (event === undefined) throw new MatrixError("M_NOT_FOUND", `No ${type} state with key "${key}"`);
    const [formatted] = await formatEvents([event]);
    if (request.query["format"] === "event") return ok(formatted);
    return ok((formatted as JsonObject)["content"]);
  }

  /**
   * The state a user may read (rooms.yaml `/state`): the current state for members and in
   * world-readable rooms; for users who left or were banned, the state when they left.
   */
  async function readableState(roomId: string, userId: string): Promise<EngineEvent[]> {
    if ((await engine.getRoom(roomId)) === undefined) throw new MatrixError("M_FORBIDDEN", `You are not in room ${roomId}`);
    const membership = await engine.getMembership(roomId, userId);
    if (membership?.membership === "join" || (await worldReadable(roomId))) return engine.getCurrentState(roomId);
    if (membership?.membership === "leave" || membership?.membership === "ban") {
      const state = await engine.getStateAfter(membership.event.eventId);
      if (state !== undefined) return [...(await engine.getEvents([...state.values()])).values()];
    }
    throw new MatrixError("M_FORBIDDEN", `You are not in room ${roomId}`);
  }

  async function worldReadable(roomId: string): Promise<boolean> {
    const event = await engine.getCurrentStateEvent(roomId, "m.room.history_visibility", "");
    return (event?.pdu["content"] as JsonObject | undefined)?.["history_visibility"] === "world_readable";
  }

  async function requireMembership(roomId: string, userId: string, allowed: readonly string[]): Promise<void> {
    if ((await engine.getRoom(roomId)) === undefined) throw new MatrixError("M_FORBIDDEN", `You are not in room ${roomId}`);
    const membership = await engine.getMembership(roomId, userId);
    if (membership === undefined || !allowed.includes(membership.membership)) throw new MatrixError("M_FORBIDDEN", `You are not in room ${roomId}`);
  }

  async function formatEvents(events: readonly EngineEvent[]): Promise<JsonObject[]> {
    const byRoom = new Map<string, string[]>();
    for (const event of events) byRoom.set(event.roomId, [...(byRoom.get(event.roomId) ?? []), event.eventId]);
    const redactions = new Map<string, EngineEvent>();
    for (const [roomId, ids] of byRoom) for (const [id, redaction] of await engine.getRedactions(roomId, ids)) redactions.set(id, redaction);
    const at = now();
    return events.map((event) => toClientEvent(event, at, redactions.get(event.eventId)));
  }

  /**
   * `GET /messages` (message_pagination.yaml), in the room's topological order (by depth,
   * then stream ordering), as Synapse paginates: stream order alone would list history
   * backfilled after a rejoin before the events this server received live during an earlier
   * membership. Tokens are `t<depth>_<stream>`, the place just after that event (see
   * ./pagination-token.ts; `s<N>` tokens of earlier versions are still read). Going back
   * from a token returns the events at or before it; going forward, those after it. `end`
   * is left out once the page comes back short (no more events).
   *
   * Going back, the server first fetches older history from the room's other servers
   * (`RemoteHistory.backfill`) when the page may have a gap (see {@link gapDepths}), so
   * that a client paging back sees each event once, in the room's order.
   */
  async function messages(request: RouteRequest): Promise<RouteResponse> {
    const owner = await user(request);
    const roomId = roomIdParam(request);
    const dir = request.query["dir"];
    if (dir === undefined) throw new MatrixError("M_MISSING_PARAM", "dir is required");
    if (dir !== "b" && dir !== "f") throw new MatrixError("M_INVALID_PARAM", 'dir must be "b" or "f"');
    const limitText = request.query["limit"];
    let limit = DEFAULT_MESSAGES_LIMIT;
    if (limitText !== undefined) {
      if (!/^\d+$/.test(limitText)) throw new MatrixError("M_INVALID_PARAM", "limit must be a non-negative integer");
      limit = Math.min(Number(limitText), MAX_MESSAGES_LIMIT);
    }
    if ((await engine.getRoom(roomId)) === undefined) throw new MatrixError("M_FORBIDDEN", `You are not in room ${roomId}`);
    const membership = await engine.getMembership(roomId, owner.userId);
    if (!["join", "leave", "ban"].includes(membership?.membership ?? "") && !(await worldReadable(roomId))) {
      throw new MatrixError("M_FORBIDDEN", `You are not in room ${roomId}`);
    }
    const fromText = request.query["from"];
    const toText = request.query["to"];
    const from = fromText === undefined ? await defaultStart(roomId, dir) : await readToken(roomId, fromText, "from");
    const to = toText === undefined ? undefined : await readToken(roomId, toText, "to");

    const query = { dir, limit, ...(from === undefined ? {} : { from }) } as const;
    let page = await engine.getTimeline(roomId, query);
    if (dir === "b" && to === undefined && history !== undefined && limit > 0) {
      // Each round places up to 100 events, by depth; stop once no gap can reach this page.
      for (let round = 0; round < MAX_BACKFILL_ROUNDS; round++) {
        const childDepths = await gapDepths(roomId, from, page, limit);
        if (childDepths === undefined) break;
        let placed: number;
        try {
          placed = await history.backfill(roomId, { childDepths });
        } catch (error) {
          logger.warn("backfill failed", { roomId, error: (error as Error).message });
          break;
        }
        if (placed === 0) break;
        page = await engine.getTimeline(roomId, query);
      }
    }
    let events = page;
    let reachedTo = false;
    if (to !== undefined) {
      events = page.filter((event) => {
        const order = comparePositions(positionOf(event), to);
        return dir === "b" ? order > 0 : order <= 0;
      });
      reachedTo = events.length < page.length;
    }
    const last = events.at(-1);
    const start = fromText ?? formatPaginationToken(from ?? { depth: 0, stream: 0 });
    const body: JsonObject = { start, chunk: await formatEvents(await engine.filterEventsForUser(owner.userId, events)) };
    if (page.length === limit && limit > 0 && !reachedTo && last !== undefined) {
      const position = positionOf(last);
      // Going back, the next page starts just before the last event; forward, just after it.
      body["end"] = formatPaginationToken(dir === "b" ? { depth: position.depth, stream: position.stream - 1 } : position);
    }
    return ok(body);
  }

  /**
   * Where a page without `from` starts: after the newest event going back, before the
   * oldest going forward; `undefined` (no bound) when the timeline is empty.
   */
  async function defaultStart(roomId: string, dir: "b" | "f"): Promise<TimelinePosition | undefined> {
    const [edge] = await engine.getTimeline(roomId, { dir, limit: 1 });
    if (edge === undefined) return undefined;
    const position = positionOf(edge);
    return dir === "b" ? position : { depth: position.depth, stream: position.stream - 1 };
  }

  /** The position a `from` or `to` token names; `M_INVALID_PARAM` if it is not one of ours. */
  async function readToken(roomId: string, text: string, name: string): Promise<TimelinePosition> {
    const token = parsePaginationToken(text);
    if (token === undefined) throw new MatrixError("M_INVALID_PARAM", `${name} is not a pagination token of this server`);
    if (token.kind === "topological") return token.position;
    // `s<N>` (stream order) placed the events up to stream ordering N before it. The
    // topological place after all of them is (their greatest depth, N), as Synapse turns a
    // stream token into a topological one for backward pagination.
    const depth = await storage.transaction((tx) => tx.getMaxDepthUpToStream(roomId, token.stream));
    return { depth: depth ?? Number.MIN_SAFE_INTEGER, stream: token.stream };
  }

  /**
   * The depths of the timeline events whose missing prev events (backward extremities)
   * could belong on a backward page, or `undefined` if no such gap exists. Backfilled events
   * are placed by depth, and the missing ancestors of an event at depth c are at depth
   * c - 1 or less; those at the depth of a stored event sort below it (their stream
   * orderings are below all others). So a gap can reach the page, which spans from `from`
   * down to its last event, only if c <= from.depth + 1 and, when the page is full (it did
   * not reach the start of the stored timeline), c >= the last event's depth + 2. Synapse
   * likewise backfills before a page only from the extremities at or below the depth it
   * pages from; gaps above it cannot appear below the client's position.
   */
  async function gapDepths(roomId: string, from: TimelinePosition | undefined, page: readonly EngineEvent[], limit: number): Promise<ChildDepthRange | undefined> {
    const last = page.at(-1);
    const range: ChildDepthRange = {
      ...(from === undefined ? {} : { max: from.depth + 1 }),
      ...(page.length < limit || last === undefined ? {} : { min: last.stored.depth + 2 }),
    };
    if (range.min !== undefined && range.max !== undefined && range.min > range.max) return undefined;
    const gaps = await storage.transaction((tx) => tx.getBackwardExtremities(roomId, 1, range));
    return gaps.length === 0 ? undefined : range;
  }

  async function aliasServers(roomId: string): Promise<string[]> {
    const servers = await engine.getJoinedServers(roomId).catch(() => []);
    return [serverName, ...servers.filter((server) => server !== serverName)];
  }

  async function profileOf(userId: string, field?: string): Promise<JsonObject> {
    if (serverOf(userId) !== serverName) {
      if (queries === undefined) throw federationUnavailable(`${userId} is on another server`);
      const profile = await queries.getProfile(userId, field);
      if (profile === undefined) throw new MatrixError("M_NOT_FOUND", "Profile not found");
      return profile;
    }
    const profile = await storage.transaction((tx) => tx.getProfile(userId));
    if (profile === undefined) throw new MatrixError("M_NOT_FOUND", "Profile not found");
    const body: JsonObject = {};
    if (profile.displayname !== null) body["displayname"] = profile.displayname;
    if (profile.avatarUrl !== null) body["avatar_url"] = profile.avatarUrl;
    return body;
  }

  async function ownProfileField(request: RouteRequest): Promise<{ userId: string; key: string; column: "displayname" | "avatarUrl" }> {
    const owner = await user(request);
    const userId = userIdParam(request);
    if (userId !== owner.userId) throw new MatrixError("M_FORBIDDEN", "You can only change your own profile");
    const key = request.params["keyName"] as string;
    if (key === "displayname") return { userId, key, column: "displayname" };
    if (key === "avatar_url") return { userId, key, column: "avatarUrl" };
    throw new MatrixError("M_INVALID_PARAM", `This server stores only displayname and avatar_url, not ${key}`);
  }

  async function setProfile(userId: string, column: "displayname" | "avatarUrl", value: string | null): Promise<void> {
    await storage.transaction((tx) => tx.setProfile(userId, { [column]: value }));
  }

  return createRouteHandler({
    prefixes: ["/_matrix/client/v3", "/_matrix/client/r0"],
    routes,
    logger,
    extraRoutes: [{ method: "GET", path: "/_matrix/client/versions", handler: async () => ok({ versions: [...CLIENT_VERSIONS], unstable_features: {} }) }],
  });
}

// ---- request parsing

function roomIdParam(request: RouteRequest): string {
  const roomId = request.params["roomId"] as string;
  if (!isValidRoomId(roomId)) throw new MatrixError("M_INVALID_PARAM", `${roomId} is not a room ID`);
  return roomId;
}

function userIdParam(request: RouteRequest): string {
  const userId = request.params["userId"] as string;
  if (!isValidUserId(userId, { historical: true })) throw new MatrixError("M_INVALID_PARAM", `${userId} is not a user ID`);
  return userId;
}

function aliasParam(request: RouteRequest): string {
  const alias = request.params["roomAlias"] as string;
  if (!isValidRoomAlias(alias)) throw new MatrixError("M_INVALID_PARAM", "Room alias invalid");
  return alias;
}

function stringField(body: JsonObject, name: string): string {
  const value = body[name];
  if (value === undefined) throw new MatrixError("M_MISSING_PARAM", `${name} is required`);
  if (typeof value !== "string") throw new MatrixError("M_BAD_JSON", `${name} must be a string`);
  return value;
}

function optionalString(body: JsonObject, name: string): string | undefined {
  const value = body[name];
  if (value === undefined) return undefined;
  if (typeof value !== "string") throw new MatrixError("M_BAD_JSON", `${name} must be a string`);
  return value;
}

function userIdField(body: JsonObject, name: string): string {
  const value = stringField(body, name);
  if (!isValidUserId(value, { historical: true })) throw new MatrixError("M_INVALID_PARAM", `${value} is not a user ID`);
  return value;
}

/**
 * The key a client transaction is recorded under. The spec scopes a transaction ID to the
 * device and the request path ("Transaction identifiers"), so the path's variable parts
 * are part of the key: the same ID used in two rooms makes two events.
 */
function txnKey(request: RouteRequest, endpoint: string, target: string): string {
  return JSON.stringify([endpoint, request.params["roomId"], target, request.params["txnId"]]);
}

/** An event's place in the timeline order (timeline events always have a stream ordering). */
function positionOf(event: EngineEvent): TimelinePosition {
  return { depth: event.stored.depth, stream: event.stored.streamOrdering ?? 0 };
}

function isObject(value: JsonValue | undefined): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Reads a `createRoom` body (create_room.yaml) into engine options. */
export function readCreateRoom(body: JsonObject, creator: string, serverName: string): CreateRoomOptions {
  const visibility = optionalString(body, "visibility");
  if (visibility !== undefined && visibility !== "public" && visibility !== "private") {
    throw new MatrixError("M_INVALID_PARAM", 'visibility must be "public" or "private"');
  }
  const preset = optionalString(body, "preset");
  if (preset !== undefined && !["private_chat", "public_chat", "trusted_private_chat"].includes(preset)) {
    throw new MatrixError("M_INVALID_PARAM", "preset must be private_chat, public_chat or trusted_private_chat");
  }
  const aliasName = optionalString(body, "room_alias_name");
  let alias: string | undefined;
  if (aliasName !== undefined) {
    alias = `#${aliasName}:${serverName}`;
    if (aliasName === "" || /[\s:]/.test(aliasName) || !isValidRoomAlias(alias)) throw new MatrixError("M_INVALID_PARAM", `"${aliasName}" is not a valid alias local part`);
  }
  const invite = body["invite"];
  if (invite !== undefined && (!Array.isArray(invite) || !invite.every((u) => typeof u === "string" && isValidUserId(u, { historical: true })))) {
    throw new MatrixError("M_INVALID_PARAM", "invite must be an array of user IDs");
  }
  for (const name of ["creation_content", "power_level_content_override"]) {
    if (body[name] !== undefined && !isObject(body[name])) throw new MatrixError("M_BAD_JSON", `${name} must be an object`);
  }
  const initial = body["initial_state"];
  let initialState: InitialStateEvent[] | undefined;
  if (initial !== undefined) {
    if (!Array.isArray(initial)) throw new MatrixError("M_BAD_JSON", "initial_state must be an array");
    initialState = initial.map((entry) => {
      if (!isObject(entry) || typeof entry["type"] !== "string" || !isObject(entry["content"]) || (entry["state_key"] !== undefined && typeof entry["state_key"] !== "string")) {
        throw new MatrixError("M_BAD_JSON", "initial_state entries need a type, a content object and an optional string state_key");
      }
      return { type: entry["type"], content: entry["content"], ...(typeof entry["state_key"] === "string" ? { state_key: entry["state_key"] } : {}) };
    });
  }
  const isDirect = body["is_direct"];
  if (isDirect !== undefined && typeof isDirect !== "boolean") throw new MatrixError("M_BAD_JSON", "is_direct must be a boolean");
  return {
    creator,
    roomVersion: optionalString(body, "room_version"),
    preset: preset as RoomPreset | undefined,
    visibility: visibility as "public" | "private" | undefined,
    creationContent: body["creation_content"] as JsonObject | undefined,
    initialState,
    name: optionalString(body, "name"),
    topic: optionalString(body, "topic"),
    invite: invite as string[] | undefined,
    isDirect,
    powerLevelContentOverride: body["power_level_content_override"] as JsonObject | undefined,
    alias,
  };
}

/** Checks a path alias is ours (aliases of other servers cannot be set or deleted here). */
function localAliasParamOf(request: RouteRequest, serverName: string): string {
  const alias = aliasParam(request);
  if (serverOf(alias) !== serverName) throw new MatrixError("M_INVALID_PARAM", `Aliases of other servers cannot be changed here: ${alias}`);
  return alias;
}
