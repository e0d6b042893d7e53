/**
 * Local users and their access tokens: registration (used by `myelin-server user add`) and
 * the lookup behind every authenticated client-server request.
 *
 * Spec: appendices "User Identifiers" (the localpart grammar `[a-z0-9._=\-/+]`, 255 bytes
 * for the whole ID); client-server "Using access tokens" (`Authorization: Bearer`, or the
 * deprecated `access_token` query parameter), `M_MISSING_TOKEN` / `M_UNKNOWN_TOKEN` (401).
 *
 * @module
 */

import { randomBytes } from "node:crypto";
import { MatrixError } from "@myelin/types";
import type { AccessTokenOwner, Storage } from "../storage/storage.js";
import { StorageError } from "../storage/storage.js";

/** What registering a user prints (`myelin-server user add`) and returns. */
export interface RegisteredUser {
  readonly user_id: string;
  readonly access_token: string;
  readonly device_id: string;
}

const LOCALPART = /^[a-z0-9._=\-/+]+$/;

/** A new access token: 32 random bytes, URL-safe base64, with a recognisable prefix. */
export function newAccessToken(): string {
  return `myl_${randomBytes(32).toString("base64url")}`;
}

/** A new device ID: 10 random upper-case letters (as Synapse makes them). */
export function newDeviceId(): string {
  const letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ";
  return [...randomBytes(10)].map((byte) => letters[byte % letters.length]).join("");
}

/**
 * Creates the local user `@localpart:serverName` with a device and an access token.
 *
 * @throws `MatrixError` `M_INVALID_USERNAME` (not the localpart grammar, or too long),
 *   `M_USER_IN_USE` (the user exists).
 */
export async function registerLocalUser(
  storage: Storage,
  options: { readonly localpart: string; readonly serverName: string; readonly now?: () => number },
): Promise<RegisteredUser> {
  const { localpart, serverName } = options;
  const userId = `@${localpart}:${serverName}`;
  if (!LOCALPART.test(localpart)) {
    throw new MatrixError("M_INVALID_USERNAME", `"${localpart}" is not a valid user name: use a-z, 0-9 and . _ = - / +`);
  }
  if (Buffer.byteLength(userId, "utf8") > 255) throw new MatrixError("M_INVALID_USERNAME", `${userId} is longer than 255 bytes`);
  const now = (options.now ?? Date.now)();
  const token = newAccessToken();
  const deviceId = newDeviceId();
  try {
    await storage.transaction(async (tx) => {
      await tx.createUser({ userId, createdTs: now });
      await tx.createAccessToken({ token, userId, deviceId, createdTs: now });
    });
  } catch (error) {
    if (error instanceof StorageError && error.reason === "conflict") throw new MatrixError("M_USER_IN_USE", `${userId} already exists`);
    throw error;
  }
  return { user_id: userId, access_token: token, device_id: deviceId };
}

/**
 * The access token of a request: `Authorization: Bearer <token>`, else the `access_token`
 * query parameter; `undefined` when neither is given.
 */
export function accessTokenOf(authorization: string | undefined, query: unknown): string | undefined {
  if (authorization !== undefined) {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization);
    if (match !== null) return match[1];
  }
  const fromQuery = (query as Record<string, unknown> | undefined)?.["access_token"];
  return typeof fromQuery === "string" && fromQuery !== "" ? fromQuery : undefined;
}

/**
 * The owner of the request's access token.
 *
 * @throws `MatrixError` `M_MISSING_TOKEN` / `M_UNKNOWN_TOKEN` (401).
 */
export async function authenticate(storage: Storage, token: string | undefined): Promise<AccessTokenOwner> {
  if (token === undefined) throw new MatrixError("M_MISSING_TOKEN", "Missing access token");
  const owner = await storage.transaction((tx) => tx.getAccessToken(token));
  if (owner === undefined) throw new MatrixError("M_UNKNOWN_TOKEN", "Unrecognised access token", { extra: { soft_logout: false } });
  return owner;
}
