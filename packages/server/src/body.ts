/**
 * Reading a request body under a size limit, and turning its bytes into JSON.
 *
 * @module
 */

import type { IncomingMessage } from "node:http";
import { JsonParseError, parseJson } from "@myelin/signing";
import type { JsonValue } from "@myelin/types";

/** The outcome of {@link readBody}: the bytes, or why there are none. */
export type BodyRead =
  | { readonly kind: "ok"; readonly bytes: Uint8Array }
  /** `Content-Length` or the bytes received so far exceed the limit. */
  | { readonly kind: "too-large"; readonly received: number }
  /** The client went away (or the stream failed) before the body ended. */
  | { readonly kind: "aborted"; readonly error?: unknown };

/**
 * Reads the request body, stopping as soon as it grows past `limit` bytes (or at once
 * when the declared `Content-Length` does): a peer cannot make us buffer more than the
 * limit. On `too-large` the rest of the body is discarded as it arrives, so the peer is
 * not left blocked on a full socket while the error response is sent.
 */
export function readBody(request: IncomingMessage, limit: number): Promise<BodyRead> {
  const declared = request.headers["content-length"];
  if (declared !== undefined && /^[0-9]+$/.test(declared) && Number(declared) > limit) {
    request.resume();
    return Promise.resolve({ kind: "too-large", received: 0 });
  }
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let received = 0;
    const finish = (result: BodyRead): void => {
      request.off("data", onData);
      request.off("end", onEnd);
      request.off("error", onError);
      request.off("close", onClose);
      resolve(result);
    };
    const onData = (chunk: Buffer): void => {
      received += chunk.length;
      if (received > limit) {
        chunks.length = 0;
        finish({ kind: "too-large", received });
        // Keep the stream flowing with no listener: the remaining bytes are dropped.
        request.resume();
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = (): void => finish({ kind: "ok", bytes: Buffer.concat(chunks, received) });
    const onError = (error: unknown): void => finish({ kind: "aborted", error });
    const onClose = (): void => {
      if (!request.complete) finish({ kind: "aborted" });
    };
    request.on("data", onData);
    request.on("end", onEnd);
    request.on("error", onError);
    request.on("close", onClose);
  });
}

/** Why a body is not acceptable JSON; `errcode` is the Matrix error to answer with. */
export interface JsonBodyProblem {
  readonly errcode: "M_NOT_JSON" | "M_BAD_JSON";
  readonly message: string;
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

/**
 * Decodes a body as UTF-8 JSON (server-server API § "API standards": JSON in UTF-8) with
 * the number-exact parser in lossless mode, so the value is exactly what the sender signed.
 *
 * Floats and integers beyond ±(2^53-1) are kept as `JsonNumberToken`s rather than refused:
 * events of room versions 1-5 may hold them (Synapse sends them), and refusing the body
 * would refuse every other PDU of the transaction with it (hostile-federation T14,
 * synapse#7543). The X-Matrix check then encodes them as Synapse does, and each PDU is
 * judged by its room version's rules in the application.
 *
 * Not UTF-8 or not JSON at all is `M_NOT_JSON`. JSON that no Matrix server could sign
 * (lone surrogates, nesting past the depth limit, floats beyond the double range) is
 * `M_BAD_JSON`.
 */
export function decodeJsonBody(bytes: Uint8Array): { readonly ok: true; readonly value: JsonValue } | { readonly ok: false; readonly problem: JsonBodyProblem } {
  let text: string;
  try {
    text = utf8.decode(bytes);
  } catch {
    return { ok: false, problem: { errcode: "M_NOT_JSON", message: "Request body is not valid UTF-8" } };
  }
  try {
    return { ok: true, value: parseJson(text, { strict: false, lossless: true }) };
  } catch (error) {
    if (!(error instanceof JsonParseError)) throw error;
    switch (error.reason) {
      case "syntax":
        return { ok: false, problem: { errcode: "M_NOT_JSON", message: `Request body is not JSON: ${error.message}` } };
      case "non-finite":
        return {
          ok: false,
          problem: { errcode: "M_BAD_JSON", message: `Request body has a number too large for a double at position ${error.position}` },
        };
      // Not raised in lossless mode; kept so a change of parser mode cannot go unanswered.
      case "integer-out-of-range":
      case "non-integer":
        return {
          ok: false,
          problem: { errcode: "M_BAD_JSON", message: `Request body has a number canonical JSON cannot carry at position ${error.position}` },
        };
      case "lone-surrogate":
        return {
          ok: false,
          problem: { errcode: "M_BAD_JSON", message: `Request body has an unpaired UTF-16 surrogate at position ${error.position}` },
        };
      case "too-deep":
        return {
          ok: false,
          problem: { errcode: "M_BAD_JSON", message: `Request body is nested too deeply (at position ${error.position})` },
        };
    }
  }
}
