// The `myelin` executable's body: bin/myelin.js runs the compiled form of this file.
import { main } from "./main.js";

process.exitCode = await main(process.argv.slice(2));
