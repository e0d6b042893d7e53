export { createTestCa } from "./test-ca.js";
export type { TestCa, TestCertificate } from "./test-ca.js";
export { trackChildProcess } from "./child-processes.js";
export { CsClient, CsRequestError, waitFor } from "./cs-client.js";
export type { ClientEvent, CreateRoomRequest, CsClientOptions, CsFailure, MessagesResponse, TestUser, WaitOptions } from "./cs-client.js";
