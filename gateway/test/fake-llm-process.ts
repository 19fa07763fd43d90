import { startFakeLlm } from "./fake-llm.js";

/**
 * The fake llm-server in a process of its own, so a test can stop it (SIGSTOP) like a
 * frozen server: its socket keeps accepting connections, nothing answers. Prints its URL.
 */
const fake = await startFakeLlm();
process.stdout.write(`${fake.url}\n`);
