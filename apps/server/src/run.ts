// The `myelin-server` executable's body: bin/myelin-server.js runs the compiled form of
// this file. SIGINT and SIGTERM stop the server gracefully (exit 0); a second signal
// exits at once (exit 1).
import { launch } from "./main.js";

const outcome = await launch(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr, cwd: process.cwd() });
if (outcome.kind === "exit") {
  process.exitCode = outcome.code;
} else {
  let stopping = false;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (stopping) {
      process.stderr.write(`myelin-server: ${signal} again, exiting now\n`);
      process.exit(1);
    }
    stopping = true;
    process.stdout.write(`myelin-server: ${signal}, stopping\n`);
    outcome.homeserver.stop().then(
      () => {
        process.exitCode = 0;
        process.off("SIGINT", onSignal);
        process.off("SIGTERM", onSignal);
      },
      (error: unknown) => {
        process.stderr.write(`myelin-server: error while stopping: ${(error as Error).message}\n`);
        process.exit(1);
      },
    );
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
}
