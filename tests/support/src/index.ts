export { createTestCa } from "./test-ca.js";
export type { TestCa, TestCertificate } from "./test-ca.js";
