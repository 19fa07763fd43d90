import { buildApp } from "./app.js";
import { type Config, ConfigError, loadConfig } from "./config.js";
import { BatchedLogStream } from "./log-stream.js";
import { Tracing } from "./services/tracing.js";

let config: Config;
try {
  config = loadConfig();
} catch (err) {
  if (err instanceof ConfigError) {
    process.stderr.write(`${err.message}\n`);
    process.exit(1);
  }
  throw err;
}

// Log lines go to stdout in batches (every 50 ms at most), written asynchronously, off the
// request path; every line still goes out before the process exits (flush on shutdown).
const logs = new BatchedLogStream(1);
// Last resort (a crash): write what is still buffered, synchronously.
process.once("exit", () => {
  try {
    logs.flushSync();
  } catch {
    // nothing more can be done while exiting
  }
});

// stdout is also the operator's channel: the first-admin setup link is one plain line there.
const app = await buildApp(config, {
  logStream: logs,
  operatorOut: process.stdout,
  tracing: new Tracing(), // OTEL_*: off unless OTEL_EXPORTER_OTLP_ENDPOINT is set
});
for (const warning of config.warnings) app.log.warn(warning);

let closing = false;
async function shutdown(signal: NodeJS.Signals): Promise<void> {
  if (closing) return;
  closing = true;
  app.log.info({ signal, drainMs: config.shutdownDrainMs }, "shutting down");
  // Last resort, whatever hangs: exit on our own terms before the supervisor kills us
  // (the drain, its 1 s grace and the usage flush's own 5 s bound fit before it).
  const force = setTimeout(() => {
    app.log.error("shutdown did not finish in time; exiting");
    void logs.flush().finally(() => process.exit(1));
  }, config.shutdownDrainMs + 7_000);
  force.unref();
  let code = 0;
  try {
    await app.close();
  } catch (err) {
    app.log.error({ err }, "error during shutdown");
    code = 1;
  }
  await logs.flush();
  process.exit(code);
}
process.once("SIGINT", shutdown);
process.once("SIGTERM", shutdown);

try {
  const address = await app.listen({ host: config.host, port: config.port });
  process.stdout.write(`gateway listening on ${address}\n`);
} catch (err) {
  const message = err instanceof Error ? err.message : String(err);
  process.stderr.write(
    `start error: cannot listen on ${config.host}:${config.port} (${message})\n`,
  );
  process.exit(1);
}
