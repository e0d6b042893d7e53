/**
 * Reading the `multipart/mixed` answers of the authenticated media endpoints
 * (server-server API § "Content Repository"): exactly two parts, JSON metadata first,
 * then either the media bytes or a `Location` header to fetch them from.
 *
 * @module
 */

/** The second part of a media response. */
export type MediaContent =
  | {
      readonly kind: "bytes";
      /** The part's headers, names lower-cased. */
      readonly headers: Readonly<Record<string, string>>;
      readonly contentType?: string;
      readonly contentDisposition?: string;
      readonly data: Buffer;
    }
  | {
      readonly kind: "location";
      /**
       * Where to download the media from. It is the caller's job to fetch it through a
       * client that refuses private addresses (hostile-federation T71).
       */
      readonly location: string;
      readonly headers: Readonly<Record<string, string>>;
    };

/** A parsed `multipart/mixed` media response. */
export interface MultipartResponse<M> {
  /** The JSON metadata part. */
  readonly metadata: M;
  readonly content: MediaContent;
}

/** Why a multipart body was refused. */
export type MultipartFailure = "no-boundary" | "malformed" | "wrong-part-count" | "invalid-metadata";

/** Thrown by {@link parseMultipartMixed}. */
export class MultipartParseError extends Error {
  override readonly name = "MultipartParseError";
  constructor(
    readonly reason: MultipartFailure,
    detail: string,
  ) {
    super(`invalid multipart/mixed response (${reason}): ${detail}`);
  }
}

/** The `boundary` parameter of a `multipart/*` content type. */
function boundaryOf(contentType: string): string | undefined {
  const match = /;\s*boundary\s*=\s*(?:"([^"]+)"|([^;\s]+))/i.exec(contentType);
  return match?.[1] ?? match?.[2];
}

interface Part {
  readonly headers: Record<string, string>;
  readonly body: Buffer;
}

function parseParts(body: Buffer, boundary: string): Part[] {
  const delimiter = Buffer.from(`--${boundary}`);
  const parts: Part[] = [];
  let index = body.indexOf(delimiter);
  if (index === -1) throw new MultipartParseError("malformed", "no boundary delimiter");
  for (;;) {
    let cursor = index + delimiter.length;
    // "--" right after a delimiter closes the body.
    if (body.subarray(cursor, cursor + 2).toString("latin1") === "--") return parts;
    // Skip transport padding and the CRLF ending the delimiter line.
    const lineEnd = body.indexOf("\r\n", cursor);
    if (lineEnd === -1) throw new MultipartParseError("malformed", "unterminated delimiter line");
    cursor = lineEnd + 2;
    const next = body.indexOf(Buffer.concat([Buffer.from("\r\n"), delimiter]), cursor - 2);
    if (next === -1) throw new MultipartParseError("malformed", "missing closing delimiter");
    const part = body.subarray(cursor, next);
    // A part without headers starts with the blank line itself (RFC 2046 §5.1.1).
    const headerEnd = part.subarray(0, 2).toString("latin1") === "\r\n" ? -2 : part.indexOf("\r\n\r\n");
    const headerText = headerEnd === -1 ? part.toString("latin1") : part.subarray(0, Math.max(0, headerEnd)).toString("latin1");
    const headers: Record<string, string> = Object.create(null) as Record<string, string>;
    for (const line of headerText.split("\r\n")) {
      const colon = line.indexOf(":");
      if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
    }
    parts.push({ headers, body: headerEnd === -1 ? Buffer.alloc(0) : part.subarray(headerEnd + 4) });
    index = next + 2;
  }
}

/**
 * Parses a media response. `parseMetadata` turns the first part's text into its value
 * (it should throw on invalid JSON).
 *
 * @throws {@link MultipartParseError}
 */
export function parseMultipartMixed<M>(
  contentType: string,
  body: Buffer,
  parseMetadata: (text: string) => M,
): MultipartResponse<M> {
  const boundary = boundaryOf(contentType);
  if (!/^multipart\/mixed\b/i.test(contentType) || boundary === undefined) {
    throw new MultipartParseError("no-boundary", `content type ${JSON.stringify(contentType)}`);
  }
  const parts = parseParts(body, boundary);
  if (parts.length !== 2) throw new MultipartParseError("wrong-part-count", `${parts.length} parts, expected 2`);
  const [first, second] = parts as [Part, Part];
  let metadata: M;
  try {
    metadata = parseMetadata(first.body.toString("utf8"));
  } catch (error) {
    throw new MultipartParseError("invalid-metadata", (error as Error).message);
  }
  const location = second.headers["location"];
  if (location !== undefined) return { metadata, content: { kind: "location", location, headers: second.headers } };
  const contentType2 = second.headers["content-type"];
  const disposition = second.headers["content-disposition"];
  return {
    metadata,
    content: {
      kind: "bytes",
      headers: second.headers,
      ...(contentType2 === undefined ? {} : { contentType: contentType2 }),
      ...(disposition === undefined ? {} : { contentDisposition: disposition }),
      data: second.body,
    },
  };
}
