/**
 * What the client API needs from federation, as interfaces the federation layer implements:
 * joining, inviting and leaving through other servers, fetching older history, and looking
 * up remote aliases and profiles. Until one is plugged in, these operations answer `404 M_NOT_FOUND` saying that
 * federation is not available.
 *
 * @module
 */

import type { JsonObject } from "@myelin/types";
import { MatrixError } from "@myelin/types";
import type { ChildDepthRange } from "../storage/storage.js";

/**
 * Membership changes that need another server (server-server "Joining Rooms", "Inviting to
 * a room", "Leaving Rooms"). Each method throws `MatrixError` for the client on failure.
 */
export interface RemoteMembership {
  /**
   * Joins `userId` (local) to a room this server is not in: `make_join` / `send_join` through
   * `servers` in order, then persists the room's state and the join. Resolves with the room ID.
   */
  join(request: {
    readonly roomId: string;
    readonly userId: string;
    /** Candidate resident servers: `via`/`server_name`, the alias's servers, the inviter's. */
    readonly servers: readonly string[];
    /** Extra member content (`reason`, `displayname`, `avatar_url`). */
    readonly content: JsonObject;
  }): Promise<{ readonly roomId: string }>;
  /**
   * Invites a user of another server to a room we are in: builds the invite
   * (`RoomEngine.buildLocalEvent`), has the invitee's server co-sign it (`/invite`), then
   * persists and distributes it. Resolves with the event ID.
   */
  invite(request: { readonly roomId: string; readonly sender: string; readonly target: string; readonly content: JsonObject }): Promise<{ readonly eventId: string }>;
  /**
   * Leaves (or rejects an invite to) a room this server is not resident in: `make_leave` /
   * `send_leave` through `servers`.
   */
  leave(request: { readonly roomId: string; readonly userId: string; readonly servers: readonly string[]; readonly content: JsonObject }): Promise<{ readonly eventId: string }>;
}

/** History this server does not hold (server-server "Backfilling and retrieving missing events"). */
export interface RemoteHistory {
  /**
   * Fetches events older than the room's timeline from other servers in the room and places
   * them in it by depth, below the events that cite them (so `/messages` going backwards
   * finds them next). With `childDepths`, starts only from the gaps (backward extremities)
   * cited by timeline events of a depth in that range. Resolves with how many were placed:
   * 0 when the timeline already reaches the room's creation, or when no server would give
   * more.
   */
  backfill(roomId: string, options?: { readonly childDepths?: ChildDepthRange | undefined }): Promise<number>;
}

/** Look-ups on other servers (server-server "Querying for information"). */
export interface RemoteQueries {
  /** Federation `query/directory`: the room an alias of another server names, or `undefined`. */
  resolveAlias(alias: string): Promise<{ readonly roomId: string; readonly servers: readonly string[] } | undefined>;
  /** Federation `query/profile`: a remote user's profile (all fields, or one), or `undefined`. */
  getProfile(userId: string, field?: string): Promise<JsonObject | undefined>;
}

/** The error for an operation that needs federation when none is plugged in. */
export function federationUnavailable(what: string): MatrixError {
  return new MatrixError("M_NOT_FOUND", `${what} and federation is not available on this server`);
}
