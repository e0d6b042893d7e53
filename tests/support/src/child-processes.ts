import type { ChildProcess } from "node:child_process";

/** Every child process registered here, killed when the test worker exits however it exits. */
const liveChildren = new Set<ChildProcess>();
let exitHookInstalled = false;

/**
 * Registers a server process started by a test so that it is killed with SIGKILL when the
 * test worker exits, even if the worker dies before its `afterAll`: Node does not kill
 * children with their parent, and only synchronous work is possible in "exit".
 */
export function trackChildProcess(child: ChildProcess): void {
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.once("exit", () => {
      for (const running of liveChildren) running.kill("SIGKILL");
    });
  }
  liveChildren.add(child);
  child.once("exit", () => liveChildren.delete(child));
}
