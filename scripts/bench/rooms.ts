import type { Row } from "./measure.js";

/** State-resolution benchmarks (filled in with @myelin/rooms). */
export const SECTIONS: Record<string, () => Row[] | Promise<Row[]>> = {};
