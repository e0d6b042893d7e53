/**
 * `@myelin/signing`: the byte-exact layer of Matrix federation. Canonical JSON and a
 * number-exact JSON parser, unpadded Base64, Ed25519 (three interchangeable backends),
 * server signing keys, JSON signatures, event content/reference hashes, redaction, event
 * and room IDs, and X-Matrix request authentication. Per-room-version behaviour is driven
 * by `RoomVersionRules` from `@myelin/types`.
 *
 * @packageDocumentation
 */

// Canonical JSON and parsing
export {
  CanonicalJsonError,
  MAX_CANONICAL_INTEGER,
  MAX_JSON_DEPTH,
  compareCodePoints,
  encodeCanonicalJson,
  encodeCanonicalJsonBytes,
  formatJsonPath,
} from "./canonical-json.js";
export type { CanonicalJsonFailure, EncodeCanonicalJsonOptions } from "./canonical-json.js";
export { JsonParseError, parseJson } from "./json-parse.js";
export type { JsonParseFailure, ParseJsonOptions } from "./json-parse.js";
export { JsonNumberToken, JsonNumberTokenError, findJsonNumberToken, formatPythonFloat } from "./json-number-token.js";
export type { JsonNumberTokenFailure } from "./json-number-token.js";

// Base64
export { Base64DecodeError, decodeBase64, encodeBase64, encodeBase64Url } from "./base64.js";
export type { Base64DecodeFailure } from "./base64.js";

// Ed25519
export {
  ED25519_BACKEND_NAMES,
  Ed25519BackendError,
  availableEd25519Backends,
  getEd25519Backend,
  loadEd25519Backend,
  setEd25519Backend,
} from "./ed25519.js";
export type { Ed25519Backend, Ed25519BackendFailure, Ed25519BackendName } from "./ed25519.js";
export { Ed25519SeedError } from "./ed25519-seed.js";

// Keys
export {
  ED25519,
  KeyIdError,
  SigningKeyFileError,
  encodePublicKey,
  formatSigningKeyFile,
  generateSigningKey,
  isValidKeyVersion,
  parseKeyId,
  parseSigningKeyFile,
  signingKeyFromSeed,
} from "./keys.js";
export type { KeyIdFailure, SigningKey, SigningKeyFileFailure } from "./keys.js";

// JSON signatures
export {
  JsonSigningError,
  computeJsonSignature,
  signJson,
  verifyJsonSignature,
  verifySignedJson,
} from "./json-signing.js";
export type {
  JsonSigningFailure,
  KeyLookup,
  SignatureCheck,
  SignatureFailure,
  Signatures,
  VerifyKey,
  VerifySignedJsonOptions,
} from "./json-signing.js";

// Events
export { redactEvent } from "./redaction.js";
export {
  EventIdError,
  checkContentHash,
  computeContentHash,
  computeEventId,
  computeReferenceHash,
  computeRoomIdV12,
} from "./event-hashes.js";
export type { EventIdFailure } from "./event-hashes.js";
export { requiredSigningServers, signEvent, verifyEvent, verifyEvents } from "./event-signing.js";
export type {
  EventRejection,
  EventSigningRules,
  EventVerification,
  VerifyEventOptions,
} from "./event-signing.js";

// X-Matrix
export {
  XMatrixHeaderError,
  formatXMatrixHeader,
  parseXMatrixHeader,
  signRequest,
  verifyRequest,
} from "./x-matrix.js";
export type {
  RequestRejection,
  RequestVerification,
  SignedRequest,
  VerifyRequestOptions,
  XMatrixAuthorization,
  XMatrixHeaderFailure,
} from "./x-matrix.js";
