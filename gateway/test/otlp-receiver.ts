import { createServer, type IncomingMessage } from "node:http";
import type { AddressInfo } from "node:net";

/** One span as an OTLP exporter sent it (ids in hex, parent "" for a root). */
export interface ReceivedSpan {
  service: string;
  traceId: string;
  spanId: string;
  parentSpanId: string;
  name: string;
}

export interface OtlpReceiver {
  /** The base URL to put in OTEL_EXPORTER_OTLP_ENDPOINT. */
  url: string;
  spans: ReceivedSpan[];
  /** Content types of the export requests received (JSON from Node, protobuf from Python). */
  contentTypes: Set<string>;
  close(): Promise<void>;
}

// ---------------------------------------------------------------- protobuf (wire format)

type Field = { number: number; wire: number; value: bigint | Buffer };

/** The fields of one protobuf message (varint and length-delimited; fixed ones skipped). */
function fields(buf: Buffer): Field[] {
  const out: Field[] = [];
  let at = 0;
  const varint = (): bigint => {
    let result = 0n;
    let shift = 0n;
    for (;;) {
      const byte = buf[at++];
      if (byte === undefined) throw new Error("truncated varint");
      result |= BigInt(byte & 0x7f) << shift;
      if ((byte & 0x80) === 0) return result;
      shift += 7n;
    }
  };
  while (at < buf.length) {
    const key = Number(varint());
    const number = key >> 3;
    const wire = key & 7;
    if (wire === 0) out.push({ number, wire, value: varint() });
    else if (wire === 2) {
      const length = Number(varint());
      out.push({ number, wire, value: buf.subarray(at, at + length) });
      at += length;
    } else if (wire === 1) at += 8;
    else if (wire === 5) at += 4;
    else throw new Error(`unsupported wire type ${wire}`);
  }
  return out;
}

const messages = (buf: Buffer, number: number): Buffer[] =>
  fields(buf)
    .filter((f) => f.number === number && f.wire === 2)
    .map((f) => f.value as Buffer);

/** service.name among a Resource's attributes (KeyValue = 1, AnyValue.string_value = 1). */
function protoService(resource: Buffer | undefined): string {
  for (const kv of resource ? messages(resource, 1) : []) {
    const [key] = messages(kv, 1);
    const [value] = messages(kv, 2);
    if (key?.toString() === "service.name" && value) return messages(value, 1)[0]?.toString() ?? "";
  }
  return "";
}

/** ExportTraceServiceRequest → ResourceSpans(1) → ScopeSpans(2) → Span(2). */
function decodeProtobuf(body: Buffer): ReceivedSpan[] {
  const spans: ReceivedSpan[] = [];
  for (const resourceSpans of messages(body, 1)) {
    const service = protoService(messages(resourceSpans, 1)[0]);
    for (const scopeSpans of messages(resourceSpans, 2)) {
      for (const span of messages(scopeSpans, 2)) {
        const hex = (n: number) => messages(span, n)[0]?.toString("hex") ?? "";
        spans.push({
          service,
          traceId: hex(1),
          spanId: hex(2),
          parentSpanId: hex(4),
          name: messages(span, 5)[0]?.toString() ?? "",
        });
      }
    }
  }
  return spans;
}

// ---------------------------------------------------------------- JSON

interface JsonExport {
  resourceSpans?: {
    resource?: { attributes?: { key: string; value: { stringValue?: string } }[] };
    scopeSpans?: {
      spans?: { traceId: string; spanId: string; parentSpanId?: string; name: string }[];
    }[];
  }[];
}

function decodeJson(body: Buffer): ReceivedSpan[] {
  const parsed = JSON.parse(body.toString()) as JsonExport;
  return (parsed.resourceSpans ?? []).flatMap((rs) => {
    const service =
      rs.resource?.attributes?.find((a) => a.key === "service.name")?.value.stringValue ?? "";
    return (rs.scopeSpans ?? []).flatMap((ss) =>
      (ss.spans ?? []).map((s) => ({
        service,
        traceId: s.traceId.toLowerCase(),
        spanId: s.spanId.toLowerCase(),
        parentSpanId: (s.parentSpanId ?? "").toLowerCase(),
        name: s.name,
      })),
    );
  });
}

async function read(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/**
 * A real OTLP/HTTP trace receiver (POST /v1/traces, protobuf or JSON) on a free local port,
 * keeping every span it is sent.
 */
export async function startOtlpReceiver(): Promise<OtlpReceiver> {
  const spans: ReceivedSpan[] = [];
  const contentTypes = new Set<string>();
  const server = createServer(async (req, res) => {
    const body = await read(req);
    const type = String(req.headers["content-type"] ?? "");
    if (req.method !== "POST" || req.url !== "/v1/traces") {
      res.writeHead(404).end();
      return;
    }
    try {
      contentTypes.add(type);
      spans.push(...(type.includes("json") ? decodeJson(body) : decodeProtobuf(body)));
    } catch (err) {
      res.writeHead(400, { "content-type": "text/plain" }).end(String(err));
      return;
    }
    // An empty ExportTraceServiceResponse, in the request's encoding.
    if (type.includes("json")) res.writeHead(200, { "content-type": "application/json" }).end("{}");
    else res.writeHead(200, { "content-type": "application/x-protobuf" }).end();
  });
  await new Promise<void>((done) => server.listen(0, "127.0.0.1", done));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    spans,
    contentTypes,
    close: () => new Promise((done) => server.close(() => done())),
  };
}
