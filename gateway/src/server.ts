import { buildApp } from "./app.js";
import { type Config, ConfigError, loadConfig } from "./config.js";

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

const app = await buildApp(config);
for (const warning of config.warnings) app.log.warn(warning);

let closing = false;
async function shutdown(signal: NodeJS.Signals): Promise<void> {
  if (closing) return;
  closing = true;
  app.log.info({ signal }, "shutting down");
  try {
    await app.close();
    process.exit(0);
  } catch (err) {
    app.log.error({ err }, "error during shutdown");
    process.exit(1);
  }
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
