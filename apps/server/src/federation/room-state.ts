/**
 * What the federation layer reads of a room's current state, on top of storage: one state
 * event, the servers with joined members, and the server ACL (compiled once per ACL event).
 *
 * @module
 */

import { stateKey } from "@myelin/rooms";
import { CanonicalJsonError, encodeCanonicalJson, parseJson } from "@myelin/signing";
import type { JsonObject } from "@myelin/types";
import type { Storage, StorageTx } from "../storage/storage.js";
import type { ServerAcl } from "./acl.js";
import { ALLOW_ALL, compileServerAcl } from "./acl.js";

/** Parses stored or staged PDU text (numbers as received: rooms 1-5 may hold floats). */
export function parsePdu(json: string): JsonObject {
  const value = parseJson(json, { strict: false });
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw new TypeError("a PDU is not a JSON object");
  return value;
}

/**
 * The text a PDU is kept as: canonical JSON (what its hashes and signatures are over), or
 * plain JSON for the rare room-1-5 event canonical JSON cannot encode (floats).
 */
export function serializePdu(pdu: JsonObject): string {
  try {
    return encodeCanonicalJson(pdu);
  } catch (error) {
    if (!(error instanceof CanonicalJsonError)) throw error;
    return JSON.stringify(pdu);
  }
}

/** The room's current state map (state key -> event ID); empty when unknown. */
export async function currentState(tx: StorageTx, roomId: string): Promise<Map<string, string>> {
  const group = await tx.getCurrentStateGroup(roomId);
  return group === undefined ? new Map() : tx.getStateGroup(group);
}

/** The content of the current state event `(type, key)`, or `undefined`. */
export async function currentStateContent(tx: StorageTx, roomId: string, type: string, key: string): Promise<JsonObject | undefined> {
  const state = await currentState(tx, roomId);
  const id = state.get(stateKey(type, key));
  if (id === undefined) return undefined;
  const row = await tx.getEvent(id);
  if (row === undefined) return undefined;
  const content = parsePdu(row.json)["content"];
  return typeof content === "object" && content !== null && !Array.isArray(content) ? content : undefined;
}

/** The server name of a user ID (after the first colon). */
export function serverOfUser(userId: string): string {
  return userId.slice(userId.indexOf(":") + 1);
}

/** The memberships of every user in a state map (user ID -> membership). */
export async function membershipsIn(tx: StorageTx, state: ReadonlyMap<string, string>): Promise<Map<string, string>> {
  const ids = new Map<string, string>();
  for (const [key, id] of state) {
    if (!key.startsWith('["m.room.member",')) continue;
    ids.set(id, (JSON.parse(key) as [string, string])[1]);
  }
  const rows = await tx.getEvents(ids.keys());
  const out = new Map<string, string>();
  for (const [id, userId] of ids) {
    const row = rows.get(id);
    if (row === undefined) continue;
    const membership = (parsePdu(row.json)["content"] as JsonObject | undefined)?.["membership"];
    if (typeof membership === "string") out.set(userId, membership);
  }
  return out;
}

/** The servers with at least one joined member in a state map, sorted. */
export async function joinedServersIn(tx: StorageTx, state: ReadonlyMap<string, string>): Promise<string[]> {
  const servers = new Set<string>();
  for (const [userId, membership] of await membershipsIn(tx, state)) if (membership === "join") servers.add(serverOfUser(userId));
  return [...servers].sort();
}

/** The servers with joined members in the room's current state. */
export async function currentJoinedServers(tx: StorageTx, roomId: string): Promise<string[]> {
  return joinedServersIn(tx, await currentState(tx, roomId));
}

/** Server ACL checks against rooms' current state, compiling each ACL event once. */
export class AclCache {
  private readonly compiled = new Map<string, ServerAcl>();

  constructor(private readonly storage: Storage) {}

  /** Whether `serverName` may use `roomId` (an unknown room has no ACL: allowed). */
  async allows(serverName: string, roomId: string): Promise<boolean> {
    return (await this.storage.transaction((tx) => this.aclOf(tx, roomId))).allows(serverName);
  }

  /** The room's current ACL, inside a transaction. */
  async aclOf(tx: StorageTx, roomId: string): Promise<ServerAcl> {
    const state = await currentState(tx, roomId);
    const id = state.get(stateKey("m.room.server_acl", ""));
    if (id === undefined) return ALLOW_ALL;
    const cached = this.compiled.get(id);
    if (cached !== undefined) return cached;
    const row = await tx.getEvent(id);
    if (row === undefined || row.rejectedReason !== null) return ALLOW_ALL;
    const content = parsePdu(row.json)["content"];
    const acl = typeof content === "object" && content !== null && !Array.isArray(content) ? compileServerAcl(content) : ALLOW_ALL;
    if (this.compiled.size > 1000) this.compiled.clear();
    this.compiled.set(id, acl);
    return acl;
  }
}
