import { describe, expect, it } from "vitest";
import { MultipartParseError, parseMultipartMixed } from "./multipart.js";

const CRLF = "\r\n";

function body(...parts: string[]): Buffer {
  return Buffer.from(parts.map((p) => `--gc0p4Jq0M2Yt08jU534c0p${CRLF}${p}${CRLF}`).join("") + "--gc0p4Jq0M2Yt08jU534c0p--" + CRLF, "latin1");
}

const TYPE = "multipart/mixed; boundary=gc0p4Jq0M2Yt08jU534c0p";

describe("parseMultipartMixed", () => {
  it("reads the spec's example: JSON metadata, then the media bytes with their headers", () => {
    const parsed = parseMultipartMixed(
      TYPE,
      body(`Content-Type: application/json${CRLF}${CRLF}{}`, `Content-Type: text/plain${CRLF}${CRLF}This media is plain text.`),
      JSON.parse,
    );
    expect(parsed.metadata).toEqual({});
    expect(parsed.content).toMatchObject({ kind: "bytes", contentType: "text/plain" });
    expect(parsed.content.kind === "bytes" && parsed.content.data.toString()).toBe("This media is plain text.");
  });

  it("keeps binary content byte for byte, CRLFs included", () => {
    const bytes = "\x00\xff\r\n--not-a-boundary\r\n\x7f";
    const parsed = parseMultipartMixed(TYPE, body(`${CRLF}{}`, `Content-Type: application/octet-stream${CRLF}${CRLF}${bytes}`), JSON.parse);
    expect(parsed.content.kind === "bytes" && parsed.content.data.toString("latin1")).toBe(bytes);
  });

  it("reports a Location part as a redirect to follow", () => {
    const parsed = parseMultipartMixed(
      'multipart/mixed; boundary="gc0p4Jq0M2Yt08jU534c0p"',
      body(`Content-Type: application/json${CRLF}${CRLF}{}`, `Location: https://cdn.example.org/abc${CRLF}`),
      JSON.parse,
    );
    expect(parsed.content).toMatchObject({ kind: "location", location: "https://cdn.example.org/abc" });
  });

  it("refuses a body without boundary, with the wrong part count, or with bad metadata", () => {
    expect(() => parseMultipartMixed("application/json", Buffer.from("{}"), JSON.parse)).toThrow(
      expect.objectContaining({ reason: "no-boundary" }),
    );
    expect(() => parseMultipartMixed(TYPE, body(`${CRLF}{}`), JSON.parse)).toThrow(
      expect.objectContaining({ reason: "wrong-part-count" }),
    );
    expect(() => parseMultipartMixed(TYPE, body(`${CRLF}{`, `${CRLF}x`), JSON.parse)).toThrow(
      expect.objectContaining({ reason: "invalid-metadata" }),
    );
    expect(() => parseMultipartMixed(TYPE, Buffer.from(`--gc0p4Jq0M2Yt08jU534c0p${CRLF}${CRLF}{}`), JSON.parse)).toThrow(
      MultipartParseError,
    );
  });
});
