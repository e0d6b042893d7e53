/**
 * Membership over federation, both sides (server-server API § "Joining Rooms", § "Knocking
 * upon a room", § "Inviting to a room", § "Leaving Rooms (Rejecting Invites)").
 *
 * Resident side (handlers): `make_join` / `send_join` v2, `make_leave` / `send_leave` v2,
 * `make_knock` / `send_knock`, and `invite` v2 when one of our users is invited. The event a
 * `send_*` carries must be the membership it claims, for the room and event ID of the path,
 * sent by a user of the requesting server and signed by it (hostile-federation T50-T54,
 * CVE-2019-18835, CVE-2020-26257). Accepted events are relayed to the room's other servers.
 *
 * Joining side ({@link FederationMembership}, the client API's `RemoteMembership`): remote
 * joins through each candidate server in turn (never a server derived from the room ID:
 * room-12 IDs have none), with the template checked before we sign anything (T55,
 * CVE-2026-24471) and the `send_join` response verified event by event through the same
 * checks as `/send` (T40, T56); invites of remote users; leaving rooms we are not in.
 *
 * @module
 */

import type { FederationClient } from "@myelin/client";
import { FederationRequestError } from "@myelin/client";
import type { RoomEvent } from "@myelin/rooms";
import { checkPduFormat, stateKey, toRoomEvent } from "@myelin/rooms";
import type { FederationHandlers } from "@myelin/server";
import type { KeyLookup, SigningKey } from "@myelin/signing";
import { computeEventId, redactEvent, signEvent, signJson, verifySignedJson } from "@myelin/signing";
import type { JsonObject, JsonValue, RoomVersionRules } from "@myelin/types";
import { MatrixError, ROOM_VERSIONS, findRoomVersion } from "@myelin/types";
import { randomLetters } from "../engine/build-event.js";
import { scalarLevel, userPowerLevel } from "../engine/power.js";
import type { RoomEngine } from "../engine/room-engine.js";
import type { StateMap } from "../engine/room-reader.js";
import type { Logger } from "../log.js";
import type { Storage } from "../storage/storage.js";
import type { IncomingPipeline } from "./incoming.js";
import type { CheckedPdu } from "./pdu-checks.js";
import { checkPdus } from "./pdu-checks.js";
import { joinedServersIn, parsePdu, serializePdu, serverOfUser } from "./room-state.js";
import type { FederationSender } from "./sender.js";

/** Options shared by the resident handlers and {@link FederationMembership}. */
export interface MembershipOptions {
  readonly engine: RoomEngine;
  readonly storage: Storage;
  readonly serverName: string;
  readonly signingKey: SigningKey;
  readonly lookupKey: KeyLookup;
  readonly client: Pick<FederationClient, "call">;
  readonly sender: FederationSender;
  readonly pipeline: IncomingPipeline;
  readonly logger: Logger;
  readonly now: () => number;
  /**
   * Events being persisted as the resident server (`send_join`, `send_leave`, `send_knock`),
   * by ID, with the server that sent them: the persist hook relays these to the room's
   * other servers inside the persisting transaction. Only read while the call runs.
   */
  readonly relays: Map<string, string>;
}

type MembershipKind = "join" | "leave" | "knock";

/** A `make_*` template as the endpoint table types it (the engine builds every field). */
type TemplateEvent = JsonObject & {
  sender: string;
  origin_server_ts: number;
  type: string;
  state_key: string;
  content: { membership: string };
};

/** Most entries of `invite_room_state` kept, and the most bytes of one (T54, CVE-2023-32323). */
const MAX_STRIPPED_STATE_ENTRIES = 20;
const MAX_STRIPPED_STATE_ENTRY_BYTES = 65_536;

function isObject(value: JsonValue | undefined): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function badJson(message: string): MatrixError {
  return new MatrixError("M_BAD_JSON", message);
}

function forbidden(message: string): MatrixError {
  return new MatrixError("M_FORBIDDEN", message);
}

function membershipOf(pdu: JsonObject): unknown {
  const content = pdu["content"];
  return isObject(content) ? content["membership"] : undefined;
}

function asArray(value: string | readonly string[] | undefined): string[] {
  if (value === undefined) return [];
  return typeof value === "string" ? [value] : [...value];
}

/** The room version rules of a known room, or 404. */
async function knownRoom(storage: Storage, roomId: string): Promise<RoomVersionRules> {
  const room = await storage.transaction((tx) => tx.getRoom(roomId));
  const rules = room === undefined ? undefined : findRoomVersion(room.roomVersion);
  if (rules === undefined) throw new MatrixError("M_NOT_FOUND", `Unknown room ${roomId}`);
  return rules;
}

// ---------------------------------------------------------------------------------------
// Resident side

/** The resident-side membership handlers and `invite`. */
export function createMembershipHandlers(
  options: MembershipOptions,
): Pick<
  FederationHandlers,
  | "create_join_event_template"
  | "create_join_event"
  | "create_leave_event_template"
  | "create_leave_event"
  | "create_knock_event_template"
  | "create_knock_event"
  | "create_invite"
> {
  const { engine, storage, serverName, logger } = options;

  /** Checks of every make_*: the user is the requester's, we are in the room, the version fits. */
  async function templateFor(kind: MembershipKind, origin: string, roomId: string, userId: string, versions: readonly string[] | undefined) {
    if (serverOfUser(userId) !== origin) throw forbidden(`${userId} is not a user of ${origin}`);
    const rules = await knownRoom(storage, roomId);
    if (!(await engine.isResident(roomId))) throw new MatrixError("M_NOT_FOUND", `This server is not in room ${roomId}`);
    if (versions !== undefined && !versions.includes(rules.id)) {
      throw new MatrixError("M_INCOMPATIBLE_ROOM_VERSION", `The room is of version ${rules.id}, which your server does not support`, {
        extra: { room_version: rules.id },
      });
    }
    const content: JsonObject = { membership: kind };
    if (kind === "join") {
      const via = await restrictedJoinAuthoriser(rules, roomId, userId);
      if (via !== undefined) content["join_authorised_via_users_server"] = via;
    }
    const template = await engine.buildEventTemplate({ roomId, type: "m.room.member", sender: userId, stateKey: userId, content });
    return { room_version: template.roomVersion, event: { ...template.pdu, origin: serverName } as unknown as TemplateEvent };
  }

  /**
   * For a restricted room (rooms 8+): the local user who authorises `userId`'s join, when
   * one is needed (rooms v8 "Authorisation rules", 4.3.2; server-server "Restricted rooms").
   * None is needed when the user is already invited or joined.
   */
  async function restrictedJoinAuthoriser(rules: RoomVersionRules, roomId: string, userId: string): Promise<string | undefined> {
    if (!rules.auth.restrictedJoins) return undefined;
    const joinRules = await engine.getCurrentStateEvent(roomId, "m.room.join_rules", "");
    const rule = (joinRules?.pdu["content"] as JsonObject | undefined)?.["join_rule"];
    if (rule !== "restricted" && !(rule === "knock_restricted" && rules.auth.knockRestricted)) return undefined;
    const current = await engine.getMembership(roomId, userId);
    if (current?.membership === "join" || current?.membership === "invite") return undefined;
    const allow = (joinRules?.pdu["content"] as JsonObject | undefined)?.["allow"];
    let unknownRoom = false;
    let satisfied = false;
    for (const condition of Array.isArray(allow) ? allow : []) {
      if (!isObject(condition) || condition["type"] !== "m.room_membership" || typeof condition["room_id"] !== "string") continue;
      const other = condition["room_id"];
      if ((await engine.getRoom(other)) === undefined) {
        unknownRoom = true;
        continue;
      }
      if ((await engine.getMembership(other, userId))?.membership === "join") satisfied = true;
    }
    if (!satisfied) {
      if (unknownRoom) throw new MatrixError("M_UNABLE_TO_AUTHORISE_JOIN", "This server cannot check the room's join conditions");
      throw forbidden("You do not meet the conditions to join this room");
    }
    const state = await engine.getCurrentStateIds(roomId);
    const events = await engine.getEvents([...state.values()]);
    const view = (key: string): RoomEvent | undefined => {
      const event = events.get(state.get(key) ?? "");
      return event === undefined ? undefined : toRoomEvent(event.pdu, { rules, eventId: event.eventId });
    };
    const create = rules.auth.privilegedCreators ? await engine.getEvent(`$${roomId.slice(1)}`) : undefined;
    const createView = create !== undefined ? toRoomEvent(create.pdu, { rules, eventId: create.eventId }) : view(stateKey("m.room.create", ""));
    const power = view(stateKey("m.room.power_levels", ""));
    const needed = scalarLevel("invite", power, rules);
    const members = await engine.getJoinedMembers(roomId);
    for (const member of [...members.keys()].sort()) {
      if (engine.isLocalUser(member) && userPowerLevel(member, createView, power, rules) >= needed) return member;
    }
    throw new MatrixError("M_UNABLE_TO_GRANT_JOIN", "No user of this server may authorise the join: try another server");
  }

  /** Checks of every send_*: the body is the membership event the path and origin say it is. */
  async function checkMembershipEvent(kind: MembershipKind, origin: string, roomId: string, eventId: string, body: JsonValue): Promise<{ rules: RoomVersionRules; event: CheckedPdu; countersigned: boolean }> {
    const rules = await knownRoom(storage, roomId);
    // A restricted join authorised by one of our users needs our signature to verify at all
    // (rooms 8+ require the authorising server's): add it, then check everything else.
    const countersigned = kind === "join" && rules.auth.restrictedJoins && isObject(body) && isLocalAuthoriser(body);
    const candidate = countersigned ? countersign(body as JsonObject, serverName, options.signingKey, rules) : body;
    const [check] = await checkPdus([candidate], { rules, lookupKey: options.lookupKey, roomId });
    if (check === undefined || check.kind === "dropped") {
      const reason = check?.reason ?? "not an event";
      throw reason.startsWith("signature") ? forbidden(`The event is not correctly signed: ${reason}`) : badJson(`Invalid event: ${reason}`);
    }
    if (check.redacted) throw badJson("The event's content hash does not match");
    if (check.rejectReason !== undefined) throw badJson(check.rejectReason);
    if (check.eventId !== eventId) throw badJson("The event ID in the path is not the event's ID");
    const pdu = check.pdu;
    if (pdu["type"] !== "m.room.member") throw badJson(`Not an m.room.member event`);
    if (membershipOf(pdu) !== kind) throw badJson(`Not a ${kind} event`);
    if (pdu["state_key"] !== pdu["sender"]) throw badJson("The member event's state_key is not its sender");
    if (serverOfUser(pdu["sender"] as string) !== origin) throw forbidden(`The event's sender is not a user of ${origin}`);
    if (!(await engine.isResident(roomId))) throw new MatrixError("M_NOT_FOUND", `This server is not in room ${roomId}`);
    return { rules, event: check, countersigned };
  }

  function isLocalAuthoriser(pdu: JsonObject): boolean {
    const content = pdu["content"];
    const via = isObject(content) ? content["join_authorised_via_users_server"] : undefined;
    return typeof via === "string" && engine.isLocalUser(via);
  }

  /**
   * Persists a checked membership event as the resident server, refusing what the auth rules
   * refuse. The engine's persist hook relays it to the room's other servers in the same
   * transaction (see {@link MembershipOptions.relays}).
   */
  async function persistAsResident(roomId: string, event: CheckedPdu, origin: string): Promise<void> {
    options.relays.set(event.eventId, origin);
    let outcome;
    try {
      outcome = await engine.persistIncomingEvent({ roomId, pdu: event.pdu, eventId: event.eventId, json: serializePdu(event.pdu) });
    } finally {
      options.relays.delete(event.eventId);
    }
    switch (outcome.outcome) {
      case "persisted":
        if (outcome.softFailed) throw forbidden("The event is not allowed by the room's current state");
        options.sender.wakeDue();
        return;
      case "duplicate":
        return;
      case "rejected":
        throw forbidden(`The event is not allowed: ${outcome.decision.message}`);
      case "missing-auth-events":
      case "missing-prev-state":
        throw badJson(`The event references events this server does not have: ${outcome.missing.join(", ")}`);
      case "unknown-room":
        throw new MatrixError("M_NOT_FOUND", `Unknown room ${roomId}`);
    }
  }

  return {
    create_join_event_template: {
      v1: async ({ origin, params, query }) => {
        // `ver` defaults to ["1"] (server-server "make_join").
        const versions = query.ver === undefined ? ["1"] : asArray(query.ver);
        return templateFor("join", origin, params.roomId, params.userId, versions);
      },
    },

    create_join_event: {
      v2: async ({ origin, params, query, body }) => {
        const { roomId, eventId } = params;
        const { event, countersigned } = await checkMembershipEvent("join", origin, roomId, eventId, body);
        const pdu = event.pdu;
        await persistAsResident(roomId, event, origin);
        const omitMembers = query.omit_members === "true";
        const answer = await storage.transaction(async (tx) => {
          const row = await tx.getEvent(eventId);
          if (row === undefined || row.stateGroupBefore === null) throw new MatrixError("M_UNKNOWN", "The join was not stored", { status: 500 });
          const state = await tx.getStateGroup(row.stateGroupBefore);
          const servers = await joinedServersIn(tx, state);
          const kept = omitMembers ? await heroesOnly(tx, state) : state;
          const chain = await tx.getAuthChainIds([...kept.values(), eventId]);
          for (const id of kept.values()) chain.delete(id);
          chain.delete(eventId);
          const rows = await tx.getEvents([...kept.values(), ...chain]);
          const pdus = (ids: Iterable<string>): JsonObject[] => {
            const out: JsonObject[] = [];
            for (const id of ids) {
              const found = rows.get(id);
              if (found !== undefined && found.rejectedReason === null) out.push(parsePdu(found.json));
            }
            return out;
          };
          return { state: pdus(kept.values()), auth_chain: pdus(chain), servers };
        });
        return {
          state: answer.state,
          auth_chain: answer.auth_chain,
          ...(countersigned ? { event: pdu } : {}),
          ...(omitMembers ? { members_omitted: true, servers_in_room: answer.servers } : {}),
          origin: serverName,
        };
      },
    },

    create_leave_event_template: {
      v1: async ({ origin, params }) => templateFor("leave", origin, params.roomId, params.userId, undefined),
    },

    create_leave_event: {
      v2: async ({ origin, params, body }) => {
        const { event } = await checkMembershipEvent("leave", origin, params.roomId, params.eventId, body);
        await persistAsResident(params.roomId, event, origin);
        return {};
      },
    },

    create_knock_event_template: {
      v1: async ({ origin, params, query }) => {
        const rules = await knownRoom(storage, params.roomId);
        if (!rules.auth.knocking) {
          throw new MatrixError("M_INCOMPATIBLE_ROOM_VERSION", `Room version ${rules.id} does not support knocking`, { extra: { room_version: rules.id } });
        }
        return templateFor("knock", origin, params.roomId, params.userId, asArray(query.ver));
      },
    },

    create_knock_event: {
      v1: async ({ origin, params, body }) => {
        const { rules, event } = await checkMembershipEvent("knock", origin, params.roomId, params.eventId, body);
        if (!rules.auth.knocking) throw badJson(`Room version ${rules.id} does not support knocking`);
        await persistAsResident(params.roomId, event, origin);
        return { knock_room_state: await engine.getStrippedState(params.roomId) };
      },
    },

    create_invite: {
      v2: async ({ origin, params, body }) => {
        const { roomId, eventId } = params;
        const rules = findRoomVersion(body.room_version);
        if (rules === undefined) {
          throw new MatrixError("M_INCOMPATIBLE_ROOM_VERSION", `Room version ${body.room_version} is not supported`, { extra: { room_version: body.room_version } });
        }
        const [check] = await checkPdus([body.event as JsonValue], { rules, lookupKey: options.lookupKey, roomId });
        if (check === undefined || check.kind === "dropped") {
          const reason = check?.reason ?? "not an event";
          throw reason.startsWith("signature") ? forbidden(`The invite is not correctly signed: ${reason}`) : badJson(`Invalid invite: ${reason}`);
        }
        if (check.redacted || check.rejectReason !== undefined) throw badJson("The invite's content hash or format is not valid");
        if (check.eventId !== eventId) throw badJson("The event ID in the path is not the event's ID");
        const pdu = check.pdu;
        const target = pdu["state_key"];
        if (pdu["type"] !== "m.room.member" || membershipOf(pdu) !== "invite") throw badJson("Not an invite event");
        if (typeof target !== "string" || serverOfUser(target) !== serverName) throw badJson("The invited user is not a user of this server");
        if (serverOfUser(pdu["sender"] as string) !== origin) throw forbidden("The invite was not sent by a user of the requesting server");
        if ((await storage.transaction((tx) => tx.getUser(target))) === undefined) throw new MatrixError("M_NOT_FOUND", `Unknown user ${target}`);

        // Sign the event as received (unsigned data included), as the spec asks ("all other fields untouched").
        const signed = signEvent(body.event as JsonObject, serverName, options.signingKey, rules);
        const stripped = sanitizeStrippedState(body.invite_room_state as JsonValue | undefined);
        const { unsigned: _unsigned, ...event } = signed as JsonObject;
        await engine.recordInvite({ roomId, roomVersion: rules.id, eventId, pdu: event, inviteRoomState: stripped });
        logger.info("received an invite", { roomId, eventId, target, origin });
        return { event: signed };
      },
    },
  };
}

/**
 * Adds our signature to an event signed by others, leaving its hashes alone (a wrong
 * content hash must still be detected afterwards).
 */
function countersign(pdu: JsonObject, serverName: string, key: SigningKey, rules: RoomVersionRules): JsonObject {
  const { signatures, unsigned: _unsigned, ...rest } = pdu;
  const ours = signJson(redactEvent(rest, rules), serverName, key).signatures[serverName] ?? {};
  const existing = isObject(signatures as JsonValue | undefined) ? (signatures as Record<string, JsonObject>) : {};
  return { ...pdu, signatures: { ...existing, [serverName]: { ...(existing[serverName] ?? {}), ...ours } } };
}

/** Keeps only the state entries a client needs to show an invite, bounded (T54). */
export function sanitizeStrippedState(value: JsonValue | undefined): JsonObject[] {
  if (!Array.isArray(value)) return [];
  const out: JsonObject[] = [];
  for (const entry of value) {
    if (!isObject(entry) || typeof entry["type"] !== "string" || typeof entry["state_key"] !== "string" || !isObject(entry["content"])) continue;
    if (JSON.stringify(entry).length > MAX_STRIPPED_STATE_ENTRY_BYTES) continue;
    out.push(entry);
    if (out.length >= MAX_STRIPPED_STATE_ENTRIES) break;
  }
  return out;
}

/** The state kept with `omit_members`: everything but member events, except up to 5 "heroes" when the room has no name. */
async function heroesOnly(tx: Parameters<Parameters<Storage["transaction"]>[0]>[0], state: ReadonlyMap<string, string>): Promise<Map<string, string>> {
  const kept = new Map<string, string>();
  const members: [string, string][] = [];
  for (const [key, id] of state) {
    if (key.startsWith('["m.room.member",')) members.push([key, id]);
    else kept.set(key, id);
  }
  if (!kept.has(stateKey("m.room.name", "")) && !kept.has(stateKey("m.room.canonical_alias", ""))) {
    // Spec (send_join v2, omit_members): keep the members that would be the room's heroes.
    const rows = await tx.getEvents(members.map(([, id]) => id));
    const heroes = members
      .filter(([, id]) => {
        const row = rows.get(id);
        const membership = row === undefined ? undefined : membershipOf(parsePdu(row.json));
        return membership === "join" || membership === "invite";
      })
      .sort(([a], [b]) => (a < b ? -1 : 1))
      .slice(0, 5);
    for (const [key, id] of heroes) kept.set(key, id);
  }
  return kept;
}

// ---------------------------------------------------------------------------------------
// Joining side

/** Fields a `make_*` template may set that we keep (everything else is ours to fill or drop). */
const TEMPLATE_FIELDS = ["room_id", "type", "sender", "state_key", "prev_events", "auth_events", "depth"];

/** Why a template or response from a resident server was refused. */
export class MembershipRefusedError extends Error {
  override readonly name = "MembershipRefusedError";
  constructor(
    readonly reason: "bad-template" | "bad-response" | "unsupported-room-version",
    readonly server: string,
    message: string,
  ) {
    super(`${server}: ${message}`);
  }
}

/** The client API's `RemoteMembership`, over federation. */
export class FederationMembership {
  constructor(private readonly options: MembershipOptions) {}

  /** Joins a local user to a room through `servers`, in turn. */
  async join(request: { readonly roomId: string; readonly userId: string; readonly servers: readonly string[]; readonly content: JsonObject }): Promise<{ readonly roomId: string }> {
    const { roomId, userId } = request;
    const servers = [...new Set(request.servers)].filter((server) => server !== this.options.serverName);
    if (servers.length === 0) throw new MatrixError("M_NOT_FOUND", `No server to join ${roomId} through: give one with via`);
    const failures: string[] = [];
    let forbiddenError: MatrixError | undefined;
    for (const server of servers) {
      try {
        await this.joinVia(server, roomId, userId, request.content);
        return { roomId };
      } catch (error) {
        const message = error instanceof Error ? error.message : String(error);
        this.options.logger.warn("remote join failed through a server", { roomId, server, error: message });
        failures.push(`${server}: ${message}`);
        if (error instanceof FederationRequestError && error.status === 403) {
          forbiddenError ??= new MatrixError("M_FORBIDDEN", `${server} refused the join: ${message}`);
        }
      }
    }
    throw forbiddenError ?? new MatrixError("M_UNKNOWN", `Could not join ${roomId}: ${failures.join("; ")}`, { status: 502 });
  }

  private async joinVia(server: string, roomId: string, userId: string, extra: JsonObject): Promise<void> {
    const { client, logger } = this.options;
    const template = await client.call("create_join_event_template", "v1", server, {
      params: { roomId, userId },
      query: { ver: Object.keys(ROOM_VERSIONS) },
      // A client waits: on failure, go on to the next server rather than retrying this one.
      retry: false,
    });
    const rules = findRoomVersion(template.room_version ?? "1");
    if (rules === undefined) throw new MembershipRefusedError("unsupported-room-version", server, `room version ${String(template.room_version)}`);
    const content: JsonObject = { ...(await this.profileContent(userId)), ...extra, membership: "join" };
    const via = (template.event as JsonObject)["content"];
    if (isObject(via) && typeof via["join_authorised_via_users_server"] === "string") {
      content["join_authorised_via_users_server"] = via["join_authorised_via_users_server"];
    }
    const { pdu, eventId } = this.eventFromTemplate(server, template.event as JsonObject, { roomId, userId, membership: "join", rules, content });
    const answer = await client.call("create_join_event", "v2", server, { params: { roomId, eventId }, body: pdu, query: { omit_members: "false" } });
    let join = pdu;
    if (isObject(answer.event as JsonValue | undefined)) {
      // Restricted rooms: the resident's countersigned copy; it must be our event.
      const theirs = answer.event as JsonObject;
      if (computeEventId(theirs, rules) !== eventId) throw new MembershipRefusedError("bad-response", server, "the returned join event is not ours");
      join = theirs;
    }
    await this.persistJoin(server, roomId, rules, join, eventId, answer.state as JsonValue[], answer.auth_chain as JsonValue[]);
    await this.options.engine.forgetPendingInvite(roomId, userId);
    logger.info("joined a room over federation", { roomId, userId, via: server, eventId });
  }

  /**
   * Persists a room learnt from a `send_join` response: every event checked on its own (bad
   * ones dropped, T40), the auth chain and state stored as outliers (each authorised against
   * its own auth events), then the join placed in the DAG on the state given.
   */
  private async persistJoin(server: string, roomId: string, rules: RoomVersionRules, join: JsonObject, joinId: string, state: readonly JsonValue[], authChain: readonly JsonValue[]): Promise<void> {
    const { engine, pipeline } = this.options;
    const [stateChecks, chainChecks] = [
      await checkPdus(state, { rules, lookupKey: this.options.lookupKey, roomId }),
      await checkPdus(authChain, { rules, lookupKey: this.options.lookupKey, roomId }),
    ];
    const goodState = stateChecks.filter((c): c is CheckedPdu => c.kind === "checked" && c.rejectReason === undefined);
    const create = goodState.find((c) => c.pdu["type"] === "m.room.create" && c.pdu["state_key"] === "");
    // T56: no create event, or one of another version, means no join (nothing registered yet).
    if (create === undefined) throw new MembershipRefusedError("bad-response", server, "the send_join state has no valid m.room.create event");
    const createContent = create.pdu["content"] as JsonObject;
    const createVersion = typeof createContent["room_version"] === "string" ? createContent["room_version"] : "1";
    if (createVersion !== rules.id) throw new MembershipRefusedError("bad-response", server, `the create event says room version ${createVersion}, not ${rules.id}`);
    const dropped = [...stateChecks, ...chainChecks].filter((c) => c.kind === "dropped").length;
    if (dropped > 0) this.options.logger.warn("dropped events of a send_join response", { roomId, server, dropped });

    const creator = rules.auth.implicitRoomCreator || typeof createContent["creator"] !== "string" ? (create.pdu["sender"] as string) : createContent["creator"];
    await engine.registerRoom({ roomId, roomVersion: rules.id, creator });
    await pipeline.storeFormatRejected(roomId, [...chainChecks, ...stateChecks]);
    const everything = [...chainChecks, ...stateChecks].flatMap((c) => (c.kind === "checked" && c.rejectReason === undefined ? [c] : []));
    await engine.persistOutliers(
      roomId,
      everything.map((c) => ({ pdu: c.pdu, eventId: c.eventId, json: serializePdu(c.pdu) })),
    );
    const stored = await this.options.storage.transaction((tx) => tx.getEvents(goodState.map((c) => c.eventId)));
    const stateBefore: StateMap = new Map();
    for (const check of goodState) {
      const row = stored.get(check.eventId);
      if (row === undefined || row.rejectedReason !== null || row.stateKey === null) continue;
      stateBefore.set(stateKey(row.type, row.stateKey), row.eventId);
    }
    for (let attempt = 0; attempt < 2; attempt++) {
      const outcome = await engine.persistIncomingEvent({ roomId, pdu: join, eventId: joinId, json: serializePdu(join), stateBefore });
      if (outcome.outcome === "persisted" || outcome.outcome === "duplicate") return;
      if (outcome.outcome === "rejected") throw new MembershipRefusedError("bad-response", server, `our join is not allowed by the room state: ${outcome.decision.message}`);
      if (outcome.outcome === "missing-auth-events" && attempt === 0) {
        // Auth events dropped from the response: ask the resident for the join's auth chain.
        const chain = await this.options.client.call("get_event_authorization", "v1", server, { params: { roomId, eventId: joinId } }).catch(() => undefined);
        if (chain !== undefined) await pipeline.storeOutliers(roomId, rules, chain.auth_chain as JsonValue[]);
        continue;
      }
      throw new MembershipRefusedError("bad-response", server, `the join cannot be placed: ${outcome.outcome}`);
    }
  }

  /**
   * Our event from a resident's template: only `room_id`, `type`, `sender`, `state_key`,
   * `prev_events`, `auth_events` and `depth` are taken, after checking they say what we
   * asked for (T55); `content`, `origin` and `origin_server_ts` are ours. Then hashed,
   * signed and format-checked.
   */
  private eventFromTemplate(
    server: string,
    template: JsonObject,
    want: { roomId: string; userId: string; membership: MembershipKind; rules: RoomVersionRules; content: JsonObject },
  ): { pdu: JsonObject; eventId: string } {
    const refuse = (message: string) => new MembershipRefusedError("bad-template", server, message);
    if (template["type"] !== "m.room.member") throw refuse("the template is not an m.room.member event");
    if (template["room_id"] !== want.roomId) throw refuse("the template is for another room");
    if (template["sender"] !== want.userId || template["state_key"] !== want.userId) throw refuse("the template is for another user");
    if (membershipOf(template) !== want.membership) throw refuse(`the template is not a ${want.membership}`);
    const content = template["content"];
    if (isObject(content)) {
      const allowed = new Set(["membership", "join_authorised_via_users_server"]);
      const extra = Object.keys(content).filter((key) => !allowed.has(key));
      if (extra.length > 0) throw refuse(`the template's content has unexpected keys: ${extra.join(", ")}`);
    }
    const event: JsonObject = {};
    for (const field of TEMPLATE_FIELDS) if (Object.hasOwn(template, field)) event[field] = template[field] as JsonValue;
    event["content"] = want.content;
    event["origin"] = this.options.serverName;
    event["origin_server_ts"] = this.options.now();
    if (want.rules.eventFormat === "v1") event["event_id"] = `$${randomLetters(18)}:${this.options.serverName}`;
    let signed: JsonObject;
    let eventId: string;
    try {
      signed = signEvent(event, this.options.serverName, this.options.signingKey, want.rules);
      eventId = computeEventId(signed, want.rules);
    } catch (error) {
      throw refuse(`the template cannot be signed: ${(error as Error).message}`);
    }
    const createEventId = want.rules.eventFormat === "v12" ? `$${want.roomId.slice(1)}` : undefined;
    const format = checkPduFormat(signed, want.rules, { eventId, ...(createEventId === undefined ? {} : { createEventId }) });
    if (!format.ok) throw refuse(`the template makes an invalid event: ${format.violation.message}`);
    return { pdu: signed, eventId };
  }

  private async profileContent(userId: string): Promise<JsonObject> {
    const profile = await this.options.storage.transaction((tx) => tx.getProfile(userId));
    const content: JsonObject = {};
    if (profile?.displayname != null) content["displayname"] = profile.displayname;
    if (profile?.avatarUrl != null) content["avatar_url"] = profile.avatarUrl;
    return content;
  }

  /** Invites a remote user: the invitee's server co-signs the invite, then it is persisted and sent to the room. */
  async invite(request: { readonly roomId: string; readonly sender: string; readonly target: string; readonly content: JsonObject }): Promise<{ readonly eventId: string }> {
    const { engine, client } = this.options;
    const { roomId, target } = request;
    const built = await engine.buildLocalEvent({
      roomId,
      sender: request.sender,
      type: "m.room.member",
      stateKey: target,
      content: { ...request.content, membership: "invite" },
    });
    const rules = built.rules;
    const targetServer = serverOfUser(target);
    const inviteState = await engine.getStrippedState(roomId);
    const senderMember = await engine.getCurrentStateEvent(roomId, "m.room.member", request.sender);
    if (senderMember !== undefined) inviteState.push(senderMember.pdu);
    let answer: { event: unknown };
    try {
      answer = await client.call("create_invite", "v2", targetServer, {
        params: { roomId, eventId: built.eventId },
        body: { room_version: built.roomVersion, event: built.pdu, invite_room_state: inviteState },
      });
    } catch (error) {
      if (error instanceof FederationRequestError && error.status !== undefined && error.status >= 400 && error.status < 500) {
        throw new MatrixError("M_FORBIDDEN", `${targetServer} refused the invite: ${error.message}`);
      }
      throw new MatrixError("M_UNKNOWN", `Could not reach ${targetServer} to invite ${target}: ${(error as Error).message}`, { status: 502 });
    }
    const signed = answer.event;
    if (!isObject(signed as JsonValue) || computeEventIdSafe(signed as JsonObject, rules) !== built.eventId) {
      throw new MatrixError("M_UNKNOWN", `${targetServer} returned another event than the invite`, { status: 502 });
    }
    const check = await verifySignedJson(redactEvent(signed as JsonObject, rules), targetServer, this.options.lookupKey);
    if (!check.valid) throw new MatrixError("M_UNKNOWN", `${targetServer} did not sign the invite (${check.reason})`, { status: 502 });
    const { unsigned: _unsigned, ...event } = signed as JsonObject;
    const outcome = await engine.persistIncomingEvent({ roomId, pdu: event, eventId: built.eventId, json: serializePdu(event) });
    if (outcome.outcome === "rejected") throw new MatrixError("M_FORBIDDEN", outcome.decision.message);
    if (outcome.outcome !== "persisted" && outcome.outcome !== "duplicate") {
      throw new MatrixError("M_UNKNOWN", `The invite could not be stored: ${outcome.outcome}`, { status: 500 });
    }
    return { eventId: built.eventId };
  }

  /** Leaves (or rejects an invite to) a room this server is not in, through `servers` in turn. */
  async leave(request: { readonly roomId: string; readonly userId: string; readonly servers: readonly string[]; readonly content: JsonObject }): Promise<{ readonly eventId: string }> {
    const { roomId, userId } = request;
    const servers = [...new Set(request.servers)].filter((server) => server !== this.options.serverName);
    const failures: string[] = [];
    for (const server of servers) {
      try {
        const eventId = await this.leaveVia(server, roomId, userId, request.content);
        // An invite rejected: the leave is an outlier here, so the room's state cannot say so.
        await this.options.engine.forgetPendingInvite(roomId, userId);
        return { eventId };
      } catch (error) {
        const message = error instanceof Error ? error.message : String(error);
        this.options.logger.warn("remote leave failed through a server", { roomId, server, error: message });
        failures.push(`${server}: ${message}`);
      }
    }
    throw new MatrixError("M_UNKNOWN", `Could not leave ${roomId}: ${failures.join("; ") || "no server to leave through"}`, { status: 502 });
  }

  private async leaveVia(server: string, roomId: string, userId: string, extra: JsonObject): Promise<string> {
    const { client, engine } = this.options;
    const template = await client.call("create_leave_event_template", "v1", server, { params: { roomId, userId }, retry: false });
    const rules = findRoomVersion(template.room_version ?? "1");
    if (rules === undefined) throw new MembershipRefusedError("unsupported-room-version", server, `room version ${String(template.room_version)}`);
    const { pdu, eventId } = this.eventFromTemplate(server, template.event as JsonObject, { roomId, userId, membership: "leave", rules, content: { ...extra, membership: "leave" } });
    await client.call("create_leave_event", "v2", server, { params: { roomId, eventId }, body: pdu });
    // Not in the room: keep the leave as an outlier beside the invite it answers.
    const known = await engine.getRoom(roomId);
    if (known !== undefined) {
      const view = toRoomEvent(pdu, { rules, eventId });
      await this.options.storage.transaction(async (tx) => {
        if ((await tx.hasEvents([eventId])).has(eventId)) return;
        await tx.insertEvent({
          eventId,
          roomId,
          json: serializePdu(pdu),
          type: view.type,
          stateKey: view.state_key ?? null,
          sender: view.sender,
          depth: view.depth,
          originServerTs: view.origin_server_ts,
          prevEvents: view.prev_events,
          authEvents: view.auth_events,
          outlier: true,
          receivedTs: this.options.now(),
        });
      });
    }
    return eventId;
  }
}

function computeEventIdSafe(event: JsonObject, rules: RoomVersionRules): string | undefined {
  try {
    return computeEventId(event, rules);
  } catch {
    return undefined;
  }
}
