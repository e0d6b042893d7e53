/**
 * What the scenarios ask of a room through the Client-Server API: its current state in a
 * comparable form, and waits for events, memberships and agreement between servers.
 *
 * @module
 */

import type { ClientEvent, CsClient } from "@myelin/test-support";
import { waitFor } from "@myelin/test-support";

/** The room versions every scenario runs in (the issue: "Room versions 10, 11 and 12"). */
export const ROOM_VERSIONS = ["10", "11", "12"] as const;

/** A room's current state as sorted `type|state_key -> event_id` lines, equal exactly when the states are. */
export type StateSummary = readonly string[];

/** Summarises `GET /rooms/{roomId}/state`. */
export function summariseState(events: readonly ClientEvent[]): StateSummary {
  return events.map((e) => `${e.type}|${e.state_key ?? ""} -> ${e.event_id}`).sort();
}

/** The current state of `roomId` as `client`'s server sees it. */
export async function currentState(client: CsClient, roomId: string): Promise<StateSummary> {
  return summariseState(await client.roomState(roomId));
}

/** Waits until `client` finds the event `eventId` among the room's newest `/messages` (dir=b). */
export function waitForEvent(client: CsClient, roomId: string, eventId: string, options: { timeoutMs?: number; what?: string } = {}): Promise<ClientEvent> {
  return waitFor(
    async () => (await client.messages(roomId, { dir: "b", limit: 100 })).chunk.find((e) => e.event_id === eventId),
    { what: options.what ?? `${client.userId} sees event ${eventId} in ${roomId} through /messages`, timeoutMs: options.timeoutMs ?? 20_000 },
  );
}

/** Waits until `client` sees `userId`'s membership in `roomId` as `membership`. */
export function waitForMembership(client: CsClient, roomId: string, userId: string, membership: string, timeoutMs = 20_000): Promise<true> {
  return waitFor(
    async () => (await client.getState<{ membership?: string }>(roomId, "m.room.member", userId)).membership === membership,
    { what: `${client.userId} sees ${userId} with membership "${membership}" in ${roomId}`, timeoutMs },
  );
}

/** Waits until every client's server reports the same current state for `roomId`, and returns it. */
export async function waitForIdenticalState(clients: readonly CsClient[], roomId: string, timeoutMs = 20_000): Promise<StateSummary> {
  let last: StateSummary[] = [];
  try {
    return await waitFor(
      async () => {
        last = await Promise.all(clients.map((c) => currentState(c, roomId)));
        const [first, ...rest] = last;
        return first !== undefined && first.length > 0 && rest.every((s) => JSON.stringify(s) === JSON.stringify(first)) ? first : undefined;
      },
      { what: `${clients.map((c) => c.userId).join(", ")} report identical current state for ${roomId}`, timeoutMs },
    );
  } catch (error) {
    const views = last.map((s, i) => `${clients[i]?.userId}:\n  ${s.join("\n  ")}`).join("\n");
    throw new Error(`${(error as Error).message}\nlast views:\n${views}`);
  }
}

/** The `body` of each `m.room.message` in `events`, in order. */
export function messageBodies(events: readonly ClientEvent[]): string[] {
  return events.filter((e) => e.type === "m.room.message").map((e) => String(e.content["body"]));
}

/**
 * Waits until `client`'s whole timeline of `roomId` (paginated `/messages`, which may
 * backfill) holds every body of `expected`, and returns the bodies it holds in timeline
 * order, restricted to those starting with `prefix`.
 */
export async function waitForBodies(
  client: CsClient,
  roomId: string,
  prefix: string,
  expected: readonly string[],
  timeoutMs = 20_000,
): Promise<string[]> {
  let seen: string[] = [];
  try {
    return await waitFor(
      async () => {
        seen = messageBodies(await client.timeline(roomId)).filter((b) => b.startsWith(prefix));
        const have = new Set(seen);
        return expected.every((b) => have.has(b)) ? seen : undefined;
      },
      { what: `${client.userId} sees all ${expected.length} messages "${prefix}…" in ${roomId}`, timeoutMs },
    );
  } catch (error) {
    const have = new Set(seen);
    const missing = expected.filter((b) => !have.has(b));
    throw new Error(`${(error as Error).message}; has ${seen.length}, missing ${missing.length}: ${missing.slice(0, 10).join(", ")}${missing.length > 10 ? ", …" : ""}`);
  }
}
