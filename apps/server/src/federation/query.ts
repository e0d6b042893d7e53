/**
 * Federation queries, both ways: serving `query/directory` (our aliases) and `query/profile`
 * (our users), and asking other servers for theirs (server-server API § "Querying for
 * information").
 *
 * @module
 */

import type { FederationClient } from "@myelin/client";
import { FederationRequestError } from "@myelin/client";
import type { FederationHandlers } from "@myelin/server";
import type { JsonObject } from "@myelin/types";
import { MatrixError } from "@myelin/types";
import type { Storage } from "../storage/storage.js";
import { currentJoinedServers, serverOfUser } from "./room-state.js";

/** Options of {@link createQueryHandlers}. */
export interface QueryOptions {
  readonly storage: Storage;
  readonly serverName: string;
}

/** The `query/directory` and `query/profile` handlers. */
export function createQueryHandlers(options: QueryOptions): Pick<FederationHandlers, "get_room_information" | "get_profile_information"> {
  const { storage, serverName } = options;
  return {
    get_room_information: {
      v1: async ({ query }) => {
        const alias = query.room_alias;
        // Only our own aliases are answered (spec: servers query the alias's own server).
        if (serverOfUser(alias) !== serverName) throw new MatrixError("M_NOT_FOUND", "Room alias not hosted on this server");
        return storage.transaction(async (tx) => {
          const row = await tx.getAlias(alias);
          if (row === undefined) throw new MatrixError("M_NOT_FOUND", "Room alias not found");
          const servers = await currentJoinedServers(tx, row.roomId);
          // Ourselves first: we resolved the alias, so we are the best guess to join through.
          const ordered = [serverName, ...servers.filter((s) => s !== serverName)];
          return { room_id: row.roomId, servers: ordered };
        });
      },
    },
    get_profile_information: {
      v1: async ({ query }) => {
        if (serverOfUser(query.user_id) !== serverName) {
          throw new MatrixError("M_INVALID_PARAM", "User is not hosted on this server");
        }
        const profile = await storage.transaction((tx) => tx.getProfile(query.user_id));
        if (profile === undefined) throw new MatrixError("M_NOT_FOUND", "Profile was not found");
        const all: JsonObject = {};
        if (profile.displayname !== null) all["displayname"] = profile.displayname;
        if (profile.avatarUrl !== null) all["avatar_url"] = profile.avatarUrl;
        if (query.field === undefined) return all;
        if (!Object.hasOwn(all, query.field)) throw new MatrixError("M_NOT_FOUND", "The requested profile field is not set");
        return { [query.field]: all[query.field] } as JsonObject;
      },
    },
  };
}

/** The answer of a remote alias lookup. */
export interface RemoteAlias {
  readonly roomId: string;
  readonly servers: readonly string[];
}

/**
 * Resolves an alias of another server through `query/directory`; `undefined` when that server
 * says it does not know it (404).
 *
 * @throws `FederationRequestError` when the server cannot be asked.
 */
export async function queryRemoteAlias(client: Pick<FederationClient, "call">, alias: string): Promise<RemoteAlias | undefined> {
  const server = serverOfUser(alias);
  try {
    const answer = await client.call("get_room_information", "v1", server, { query: { room_alias: alias } });
    return { roomId: answer.room_id, servers: answer.servers.length > 0 ? answer.servers : [server] };
  } catch (error) {
    if (error instanceof FederationRequestError && error.status === 404) return undefined;
    throw error;
  }
}

/**
 * A remote user's profile through `query/profile` (only `displayname` and `avatar_url`, when
 * strings); `undefined` when the server says the user or profile does not exist.
 *
 * @throws `FederationRequestError` when the server cannot be asked.
 */
export async function queryRemoteProfile(
  client: Pick<FederationClient, "call">,
  userId: string,
): Promise<{ displayname?: string; avatar_url?: string } | undefined> {
  try {
    const answer = (await client.call("get_profile_information", "v1", serverOfUser(userId), { query: { user_id: userId } })) as JsonObject;
    const out: { displayname?: string; avatar_url?: string } = {};
    if (typeof answer["displayname"] === "string") out.displayname = answer["displayname"];
    if (typeof answer["avatar_url"] === "string") out.avatar_url = answer["avatar_url"];
    return out;
  } catch (error) {
    if (error instanceof FederationRequestError && error.status === 404) return undefined;
    throw error;
  }
}
