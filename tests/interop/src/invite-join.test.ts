// Scenario 2: a user of one server creates a room, invites a user of the other, who joins.
import { describe, expect, test } from "vitest";
import { usePeers } from "./peers.js";
import { DIRECTIONS, ROOM_VERSIONS, newUser, serverNameOf, sideName, waitForIdenticalState, waitForMembership } from "./rooms.js";

const peers = usePeers();

describe.each(ROOM_VERSIONS)("scenario 2: invite and join, room version %s", (roomVersion) => {
  test.each(DIRECTIONS)("$label: the invitee's server accepts the invite, the invitee joins the invite-only room, both servers agree", async (direction) => {
    const p = peers();
    const inviter = await newUser(p, direction.resident, "inviter");
    const invitee = await newUser(p, direction.joiner, "invitee");
    // private_chat: join_rules "invite", so the join below is allowed only by the invite.
    const { room_id: roomId } = await inviter.createRoom({ preset: "private_chat", room_version: roomVersion });
    expect((await inviter.getState<{ room_version?: string }>(roomId, "m.room.create")).room_version).toBe(roomVersion);

    // The invite goes through the invitee's server (PUT /_matrix/federation/v2/invite), which signs it.
    await inviter.invite(roomId, invitee.userId);
    await waitForMembership(inviter, roomId, invitee.userId, "invite");

    const joined = await invitee.join(roomId, [serverNameOf(p, direction.resident)]);
    expect(joined.room_id).toBe(roomId);
    await waitForMembership(inviter, roomId, invitee.userId, "join");
    await waitForMembership(invitee, roomId, inviter.userId, "join");
    expect(await invitee.joinedRooms()).toContain(roomId);
    expect((await invitee.getState<{ room_version?: string }>(roomId, "m.room.create")).room_version).toBe(roomVersion);
    await waitForIdenticalState(inviter, invitee, roomId);
  });

  test.each(DIRECTIONS)("$label: a user of the joining server who was not invited cannot join the invite-only room", async (direction) => {
    const p = peers();
    const owner = await newUser(p, direction.resident, "owner");
    const stranger = await newUser(p, direction.joiner, "stranger");
    const { room_id: roomId } = await owner.createRoom({ preset: "private_chat", room_version: roomVersion });
    // The resident refuses make_join (403 M_FORBIDDEN); the joining server passes the refusal on.
    const refused = await stranger.join(roomId, [serverNameOf(p, direction.resident)]).then(
      () => undefined,
      (error: { status?: number; errcode?: string }) => error,
    );
    expect(refused, `${sideName(direction.joiner)} let an uninvited user join ${roomId}`).toMatchObject({ status: 403, errcode: "M_FORBIDDEN" });
    await expect(owner.getState(roomId, "m.room.member", stranger.userId)).rejects.toMatchObject({ status: 404 });
  });
});
