import { spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

/** A PEM certificate and key made by `openssl` (the key file mode 0600, as openssl writes it). */
export interface Pair {
  certFile: string;
  keyFile: string;
  cert: string;
  key: string;
}

function openssl(args: string[]): void {
  const run = spawnSync("openssl", args, { encoding: "utf8" });
  if (run.status !== 0) throw new Error(`openssl failed: ${run.stderr || run.error}`);
}

function read(certFile: string, keyFile: string): Pair {
  return {
    certFile,
    keyFile,
    cert: readFileSync(certFile, "utf8"),
    key: readFileSync(keyFile, "utf8"),
  };
}

const EC = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];

/** A self-signed CA valid for a day. */
export function makeCa(dir: string, name: string): Pair {
  const certFile = join(dir, `${name}.pem`);
  const keyFile = join(dir, `${name}.key`);
  openssl(
    ["req", "-x509", ...EC, "-days", "1", "-subj", `/CN=${name}`].concat([
      "-keyout",
      keyFile,
      "-out",
      certFile,
    ]),
  );
  return read(certFile, keyFile);
}

/**
 * A certificate for `san` (e.g. `IP:127.0.0.1,DNS:localhost`) signed by `ca`, for server and
 * client use; `days` -1 makes one that has already expired.
 */
export function issue(dir: string, name: string, ca: Pair, san: string, days = 1): Pair {
  const certFile = join(dir, `${name}.pem`);
  const keyFile = join(dir, `${name}.key`);
  const csr = join(dir, `${name}.csr`);
  const ext = join(dir, `${name}.ext`);
  writeFileSync(
    ext,
    `subjectAltName=${san}\nextendedKeyUsage=serverAuth,clientAuth\nbasicConstraints=critical,CA:FALSE\n`,
  );
  openssl(["req", "-new", ...EC, "-subj", `/CN=${name}`, "-keyout", keyFile, "-out", csr]);
  openssl(
    ["x509", "-req", "-in", csr, "-CA", ca.certFile, "-CAkey", ca.keyFile].concat([
      "-CAcreateserial",
      "-days",
      String(days),
      "-extfile",
      ext,
      "-out",
      certFile,
    ]),
  );
  return read(certFile, keyFile);
}
