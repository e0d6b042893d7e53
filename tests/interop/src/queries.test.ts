// Scenario 8: profile and room-alias directory queries, both ways (SS API § "Querying for
// information": GET /_matrix/federation/v1/query/profile and query/directory, made by a
// server when its client asks about another server's user or alias).
import { randomBytes } from "node:crypto";
import { describe, expect, test } from "vitest";
import { usePeers } from "./peers.js";
import type { Side } from "./rooms.js";
import { DIRECTIONS, newUser, serverNameOf } from "./rooms.js";

const peers = usePeers();

/** Both ways: the asking server's user queries the other server. */
const ASKING: readonly { asker: Side; owner: Side; label: string }[] = DIRECTIONS.map((d) => ({
  asker: d.joiner,
  owner: d.resident,
  label: d.joiner === "myelin" ? "Myelin asks Synapse" : "Synapse asks Myelin",
}));

describe("scenario 8: profile and directory queries", () => {
  test.each(ASKING)("$label for a user's profile and gets the display name the user set", async ({ asker, owner }) => {
    const p = peers();
    const subject = await newUser(p, owner, "profiled");
    const reader = await newUser(p, asker, "reader");
    const displayname = `Display ${randomBytes(3).toString("hex")}`;
    await subject.setDisplayName(displayname);
    expect((await subject.getProfile(subject.userId)).displayname).toBe(displayname);
    const profile = await reader.getProfile(subject.userId);
    expect(profile.displayname).toBe(displayname);
  });

  test.each(ASKING)("$label for the profile of a user who does not exist and gets 404 M_NOT_FOUND", async ({ asker, owner }) => {
    const p = peers();
    const reader = await newUser(p, asker, "reader");
    const nobody = `@nobody-${randomBytes(3).toString("hex")}:${serverNameOf(p, owner)}`;
    await expect(reader.getProfile(nobody)).rejects.toMatchObject({ status: 404, errcode: "M_NOT_FOUND" });
  });

  test.each(ASKING)("$label to resolve a room alias and gets the room ID and a server to join through", async ({ asker, owner }) => {
    const p = peers();
    const creator = await newUser(p, owner, "aliaser");
    const reader = await newUser(p, asker, "reader");
    const { room_id: roomId } = await creator.createRoom({ preset: "public_chat" });
    const alias = `#dir-${randomBytes(3).toString("hex")}:${serverNameOf(p, owner)}`;
    await creator.putAlias(alias, roomId);
    const answer = await reader.getAlias(alias);
    expect(answer.room_id).toBe(roomId);
    expect(answer.servers).toContain(serverNameOf(p, owner));
  });

  test.each(ASKING)("$label to resolve an alias that does not exist and gets 404 M_NOT_FOUND", async ({ asker, owner }) => {
    const p = peers();
    const reader = await newUser(p, asker, "reader");
    const alias = `#missing-${randomBytes(3).toString("hex")}:${serverNameOf(p, owner)}`;
    await expect(reader.getAlias(alias)).rejects.toMatchObject({ status: 404, errcode: "M_NOT_FOUND" });
  });
});
