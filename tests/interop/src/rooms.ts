/**
 * What the scenarios share: the room versions and directions they run in, users on either
 * side, a room joined across the two servers, and bounded waits on what each server's
 * Client-Server API shows.
 *
 * @module
 */

import { randomBytes } from "node:crypto";
import type { ClientEvent, CsClient } from "@myelin/test-support";
import { waitFor } from "@myelin/test-support";
import type { Peers } from "./peers.js";

/** The room versions every scenario runs in (issue 6: "room versions 10, 11 and 12"). */
export const ROOM_VERSIONS = ["10", "11", "12"] as const;

/** One of the two servers. */
export type Side = "synapse" | "myelin";

/** Which server holds the room first (creates it) and which one joins it over federation. */
export interface Direction {
  readonly resident: Side;
  readonly joiner: Side;
  /** For test names. */
  readonly label: string;
}

/** Both directions: Synapse resident with Myelin joining, and the reverse. */
export const DIRECTIONS: readonly Direction[] = [
  { resident: "synapse", joiner: "myelin", label: "Synapse resident, Myelin joining" },
  { resident: "myelin", joiner: "synapse", label: "Myelin resident, Synapse joining" },
];

/** How long federation may take to deliver one thing between the two servers on loopback. */
export const FEDERATION_TIMEOUT_MS = 30_000;

/** The display name of a side, for messages. */
export function sideName(side: Side): string {
  return side === "synapse" ? "Synapse" : "Myelin";
}

/** The server name of `side`. */
export function serverNameOf(peers: Peers, side: Side): string {
  return side === "synapse" ? peers.synapse.serverName : peers.myelin.serverName;
}

/** A fresh user on `side` (`<prefix>-<random>`: unique across tests sharing a server) and its client. */
export async function newUser(peers: Peers, side: Side, prefix: string): Promise<CsClient> {
  const localpart = `${prefix}-${randomBytes(3).toString("hex")}`.toLowerCase();
  return side === "synapse" ? peers.synapse.newClient(localpart) : peers.myelin.newClient(localpart);
}

/** A room's current state as sorted `type|state_key -> event_id` lines: equal exactly when the states are. */
export type StateSummary = readonly string[];

/** The current state of `roomId` as `client`'s server reports it. */
export async function currentState(client: CsClient, roomId: string): Promise<StateSummary> {
  return (await client.roomState(roomId)).map((e) => `${e.type}|${e.state_key ?? ""} -> ${e.event_id}`).sort();
}

/** Waits until both clients' servers report the same current state of `roomId` (same state event IDs), and returns it. */
export async function waitForIdenticalState(a: CsClient, b: CsClient, roomId: string, timeoutMs = FEDERATION_TIMEOUT_MS): Promise<StateSummary> {
  let views: [StateSummary, StateSummary] | undefined;
  let lastError: unknown;
  try {
    return await waitFor(
      async () => {
        try {
          views = [await currentState(a, roomId), await currentState(b, roomId)];
        } catch (error) {
          lastError = error;
          throw error;
        }
        return JSON.stringify(views[0]) === JSON.stringify(views[1]) ? views[0] : undefined;
      },
      { what: `${a.serverName} and ${b.serverName} report the same current state of ${roomId}`, timeoutMs },
    );
  } catch (error) {
    if (views === undefined) throw error;
    const [va, vb] = views;
    const onlyA = va.filter((line) => !vb.includes(line));
    const onlyB = vb.filter((line) => !va.includes(line));
    throw new Error(
      `${(error as Error).message}\nonly on ${a.serverName}:\n  ${onlyA.join("\n  ")}\nonly on ${b.serverName}:\n  ${onlyB.join("\n  ")}` +
        (lastError === undefined ? "" : `\n(an earlier attempt failed: ${(lastError as Error).message})`),
    );
  }
}

/** Waits until `client` sees `userId`'s membership in `roomId` as `membership`. */
export function waitForMembership(client: CsClient, roomId: string, userId: string, membership: string, timeoutMs = FEDERATION_TIMEOUT_MS): Promise<true> {
  return waitFor(async () => (await client.getState<{ membership?: string }>(roomId, "m.room.member", userId)).membership === membership, {
    what: `${client.userId} sees ${userId} with membership "${membership}" in ${roomId}`,
    timeoutMs,
  });
}

/** Waits until `client` sees the state event `(type, stateKey)` with content for which `match` holds; returns the content. */
export function waitForStateContent<T extends Record<string, unknown>>(
  client: CsClient,
  roomId: string,
  type: string,
  stateKey: string,
  match: (content: T) => boolean,
  what: string,
  timeoutMs = FEDERATION_TIMEOUT_MS,
): Promise<T> {
  return waitFor(
    async () => {
      const content = await client.getState<T>(roomId, type, stateKey);
      return match(content) ? content : undefined;
    },
    { what: `${client.userId} sees ${what} in ${roomId}`, timeoutMs },
  );
}

/** Waits until `client` finds event `eventId` among the newest 100 events of `/messages`; returns it. */
export function waitForEvent(client: CsClient, roomId: string, eventId: string, timeoutMs = FEDERATION_TIMEOUT_MS): Promise<ClientEvent> {
  return waitFor(async () => (await client.messages(roomId, { limit: 100 })).chunk.find((e) => e.event_id === eventId), {
    what: `${client.userId} sees event ${eventId} in ${roomId} through /messages`,
    timeoutMs,
  });
}

/** The `m.room.message` events of `events` whose body starts with `prefix`, in the same order. */
export function messagesWithPrefix(events: readonly ClientEvent[], prefix: string): ClientEvent[] {
  return events.filter((e) => e.type === "m.room.message" && String(e.content["body"]).startsWith(prefix));
}

/**
 * Waits until `client`'s whole timeline of `roomId` (paginated `/messages`, which may make
 * its server backfill) holds `count` messages starting with `prefix`; returns them oldest first.
 */
export async function waitForMessages(client: CsClient, roomId: string, prefix: string, count: number, timeoutMs = FEDERATION_TIMEOUT_MS): Promise<ClientEvent[]> {
  let seen: ClientEvent[] = [];
  try {
    return await waitFor(
      async () => {
        seen = messagesWithPrefix(await client.timeline(roomId), prefix);
        return seen.length >= count ? seen : undefined;
      },
      { what: `${client.userId} sees ${count} messages "${prefix}…" in ${roomId}`, timeoutMs },
    );
  } catch (error) {
    throw new Error(`${(error as Error).message}; it sees ${seen.length}: ${seen.map((e) => String(e.content["body"])).join(", ")}`);
  }
}

/** What {@link setUpJoinedRoom} made. */
export interface JoinedRoom {
  readonly roomId: string;
  /** The user who created the room, on the resident server. */
  readonly resident: CsClient;
  /** The user who joined it over federation. */
  readonly joiner: CsClient;
}

/**
 * A room of version `roomVersion` created on the resident server (public, shared history,
 * `extra` merged into the createRoom body), joined by a fresh user of the other server
 * through `via` the resident server; returns once the resident sees the join.
 */
export async function setUpJoinedRoom(
  peers: Peers,
  direction: Direction,
  roomVersion: string,
  options: { prefix: string; extra?: Record<string, unknown> },
): Promise<JoinedRoom> {
  const resident = await newUser(peers, direction.resident, `${options.prefix}-r`);
  const joiner = await newUser(peers, direction.joiner, `${options.prefix}-j`);
  const { room_id: roomId } = await resident.createRoom({ preset: "public_chat", room_version: roomVersion, ...options.extra });
  await joiner.join(roomId, [serverNameOf(peers, direction.resident)]);
  await waitForMembership(resident, roomId, joiner.userId, "join");
  return { roomId, resident, joiner };
}
