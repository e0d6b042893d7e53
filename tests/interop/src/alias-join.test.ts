// Scenario 4: a user joins a public room of the other server by alias, through the
// federation directory query (GET /_matrix/federation/v1/query/directory).
import { randomBytes } from "node:crypto";
import { describe, expect, test } from "vitest";
import { usePeers } from "./peers.js";
import { DIRECTIONS, ROOM_VERSIONS, newUser, serverNameOf, waitForIdenticalState, waitForMembership } from "./rooms.js";

const peers = usePeers();

describe.each(ROOM_VERSIONS)("scenario 4: join by alias, room version %s", (roomVersion) => {
  test.each(DIRECTIONS)("$label: the joining user names only the alias; its server resolves it with the resident server and joins", async (direction) => {
    const p = peers();
    const owner = await newUser(p, direction.resident, "host");
    const visitor = await newUser(p, direction.joiner, "visitor");
    const localAlias = `lobby-${roomVersion}-${randomBytes(3).toString("hex")}`;
    const alias = `#${localAlias}:${serverNameOf(p, direction.resident)}`;
    const { room_id: roomId } = await owner.createRoom({ preset: "public_chat", room_version: roomVersion, room_alias_name: localAlias });
    expect((await owner.getAlias(alias)).room_id).toBe(roomId);

    // No via: the joining server must ask the alias's server (query/directory), then join
    // through one of the servers it names.
    const joined = await visitor.join(alias);
    expect(joined.room_id).toBe(roomId);
    await waitForMembership(owner, roomId, visitor.userId, "join");
    expect((await visitor.getState<{ room_version?: string }>(roomId, "m.room.create")).room_version).toBe(roomVersion);
    await waitForIdenticalState(owner, visitor, roomId);
  });
});
