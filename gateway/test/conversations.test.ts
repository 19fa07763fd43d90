import { Ajv2020 } from "ajv/dist/2020.js";
import addFormats from "ajv-formats";
import { createParser } from "eventsource-parser";
import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type FakeLlm, startFakeLlm } from "./fake-llm.js";
import {
  browser,
  buildTestApp,
  DATABASES,
  JSON_CT,
  postgresMissing,
  type Session,
  signUp,
} from "./helpers.js";

const noPostgres = await postgresMissing();

interface Event {
  event: string;
  data: Record<string, unknown>;
}

/** The named events of an SSE response text (eventsource-parser, as the gateway parses). */
function parseEvents(text: string): Event[] {
  const events: Event[] = [];
  const parser = createParser({
    onEvent: (e) => {
      if (e.event) events.push({ event: e.event, data: JSON.parse(e.data) });
    },
  });
  parser.feed(text);
  return events;
}

for (const database of DATABASES)
  describe.skipIf(database === "postgres" && noPostgres)(`conversations (${database})`, () => {
    let fake: FakeLlm;
    let app: FastifyInstance;
    let base: string;
    let s: Session;
    let other: Session;

    beforeAll(async () => {
      fake = await startFakeLlm();
      app = await buildTestApp({ database, llmServerUrls: [fake.url], idleTimeoutMs: 2000 });
      base = await app.listen({ port: 0, host: "127.0.0.1" });
      s = await signUp(app, "chat@example.org");
      other = await signUp(app, "other@example.org");
    });
    afterAll(async () => {
      await app.close();
      await fake.close();
    });

    async function create(session: Session, title?: string): Promise<string> {
      const res = await app.inject({
        method: "POST",
        url: "/api/conversations",
        headers: { ...browser(session), ...JSON_CT },
        payload: title ? { title } : {},
      });
      expect(res.statusCode).toBe(201);
      return res.json().id as string;
    }

    async function send(id: string, body: Record<string, unknown>, signal?: AbortSignal) {
      return fetch(`${base}/api/conversations/${id}/messages`, {
        method: "POST",
        headers: { ...browser(s), ...JSON_CT },
        body: JSON.stringify(body),
        ...(signal ? { signal } : {}),
      });
    }

    async function get(id: string, session = s) {
      return app.inject({
        method: "GET",
        url: `/api/conversations/${id}`,
        headers: browser(session),
      });
    }

    it("streams a turn as start, delta…, done and stores both messages once", async () => {
      const id = await create(s);
      const res = await send(id, {
        content: "What is   the\nweather like today?",
        system: "Be brief",
      });
      expect(res.status).toBe(200);
      expect(res.headers.get("content-type")).toMatch(/text\/event-stream/);
      const events = parseEvents(await res.text());
      expect(events.map((e) => e.event)).toEqual(["start", "delta", "delta", "delta", "done"]);
      const start = events[0]?.data as {
        userMessage: { id: string; content: string };
        assistantMessageId: string;
      };
      expect(start.userMessage.content).toBe("What is   the\nweather like today?");
      expect(
        events
          .slice(1, 4)
          .map((e) => e.data.text)
          .join(""),
      ).toBe("Hello world");
      // A delta carries its text only (no test-only timing field in what ships).
      for (const e of events.slice(1, 4)) expect(Object.keys(e.data)).toEqual(["text"]);
      const done = events[4]?.data as {
        message: { id: string; content: string };
        usage: unknown;
        finishReason: string;
      };
      expect(done.message).toMatchObject({ id: start.assistantMessageId, content: "Hello world" });
      expect(done.usage).toEqual({ promptTokens: 5, completionTokens: 3 });
      expect(done.finishReason).toBe("stop");

      const upstream = fake.requests.at(-1);
      expect(upstream?.body).toMatchObject({
        stream: true,
        messages: [
          { role: "system", content: "Be brief" },
          { role: "user", content: "What is   the\nweather like today?" },
        ],
      });
      expect(upstream?.headers["x-client-id"]).toBe(s.userId);

      const conv = (await get(id)).json();
      expect(conv.title).toBe("What is the weather like today?");
      expect(conv.messages.map((m: { role: string }) => m.role)).toEqual(["user", "assistant"]);
      expect(conv.messages[1]).toMatchObject({ content: "Hello world", finishReason: "stop" });
    });

    it("regenerates the last answer and edits a user message", async () => {
      const id = await create(s, "Mine");
      await (await send(id, { content: "first question" })).text();
      await (await send(id, { content: "second question" })).text();
      const regen = parseEvents(await (await send(id, { regenerate: true })).text());
      expect(regen[0]?.data).not.toHaveProperty("userMessage");
      expect(regen.at(-1)?.event).toBe("done");
      let conv = (await get(id)).json();
      expect(conv.title).toBe("Mine");
      expect(conv.messages.map((m: { content: string }) => m.content)).toEqual([
        "first question",
        "Hello world",
        "second question",
        "Hello world",
      ]);
      const firstId = conv.messages[0].id;
      const edit = parseEvents(
        await (await send(id, { editMessageId: firstId, content: "edited question" })).text(),
      );
      expect(edit[0]?.data.userMessage).toMatchObject({ content: "edited question" });
      conv = (await get(id)).json();
      expect(conv.messages.map((m: { content: string }) => m.content)).toEqual([
        "edited question",
        "Hello world",
      ]);
      expect(conv.messages[0].id).toBe(firstId);
    });

    it("keeps the model a question was put to and the model that answered", async () => {
      const id = await create(s);
      // No model named: the question has none (the default model), the answer the upstream's.
      const first = parseEvents(await (await send(id, { content: "q1" })).text());
      expect(first[0]?.data.userMessage).not.toHaveProperty("model");
      expect(first.at(-1)?.data.message).toMatchObject({ model: "fake-model" });
      const named = parseEvents(
        await (await send(id, { content: "q2", model: "fake-model" })).text(),
      );
      expect(named[0]?.data.userMessage).toMatchObject({ model: "fake-model" });
      expect(fake.requests.at(-1)?.body).toMatchObject({ model: "fake-model" });
      let messages = (await get(id)).json().messages as {
        id: string;
        role: string;
        model?: string;
      }[];
      expect(messages.map((m) => m.model ?? null)).toEqual([
        null,
        "fake-model",
        "fake-model",
        "fake-model",
      ]);
      // A regenerate or an edit puts the question to the new turn's model (here: the default).
      await (await send(id, { regenerate: true })).text();
      messages = (await get(id)).json().messages;
      expect(messages[2]).not.toHaveProperty("model");
      const firstId = messages[0]?.id;
      await (
        await send(id, { editMessageId: firstId, content: "q1 again", model: "fake-model" })
      ).text();
      messages = (await get(id)).json().messages;
      expect(messages.map((m) => m.model ?? null)).toEqual(["fake-model", "fake-model"]);
    });

    it("rejects conflicting or empty turn requests with 400 before streaming", async () => {
      const id = await create(s);
      const none = await send(id, {});
      expect(none.status).toBe(400);
      const both = await send(id, { content: "x", regenerate: true });
      expect(both.status).toBe(400);
      const nothing = await send(id, { regenerate: true });
      expect(nothing.status).toBe(400);
      expect(((await nothing.json()) as { error: { code: string } }).error.code).toBe(
        "BAD_REQUEST",
      );
    });

    it("saves a stopped answer as cancelled and aborts upstream", async () => {
      const id = await create(s);
      const aborted = fake.nextAbort();
      const controller = new AbortController();
      const res = await send(id, { content: "SLOW please" }, controller.signal);
      const reader = res.body?.getReader();
      let seen = "";
      while (!seen.includes("event: delta")) {
        const { value } = (await reader?.read()) ?? {};
        seen += new TextDecoder().decode(value);
      }
      controller.abort();
      await aborted;
      let messages: { role: string; content: string; finishReason?: string }[] = [];
      for (let i = 0; i < 50 && messages.length < 2; i++) {
        await new Promise((r) => setTimeout(r, 20));
        messages = (await get(id)).json().messages;
      }
      expect(messages[1]).toMatchObject({
        role: "assistant",
        content: "Hel",
        finishReason: "cancelled",
      });
    });

    it("ends with an error event and keeps the partial answer when upstream fails", async () => {
      const id = await create(s);
      const events = parseEvents(await (await send(id, { content: "MIDFAIL now" })).text());
      expect(events.at(-1)).toEqual({
        event: "error",
        data: {
          error: {
            code: "UPSTREAM_ERROR",
            type: "server_error",
            message: "The model server failed",
          },
        },
      });
      const messages = (await get(id)).json().messages;
      expect(messages[1]).toMatchObject({ content: "Hel", finishReason: "error" });
    });

    it("a turn over the model's context is a 400 with llm-server's message and stores nothing", async () => {
      const id = await create(s);
      await (await send(id, { content: "first question" })).text();
      const before = (await get(id)).json().messages;
      expect(before).toHaveLength(2);
      for (const body of [
        { content: "ERROR400 a prompt too long for the context" },
        { editMessageId: before[0].id, content: "ERROR400 an edit too long" },
      ]) {
        const res = await send(id, body);
        expect(res.status).toBe(400);
        expect(res.headers.get("content-type")).toContain("application/json");
        expect(await res.json()).toEqual({
          error: {
            code: "CONTEXT_LENGTH_EXCEEDED",
            type: "invalid_request_error",
            message: "prompt too long",
          },
        });
        // No half-written turn: neither the question nor an empty failed answer is kept.
        expect((await get(id)).json().messages).toEqual(before);
      }
    });

    async function remove(id: string) {
      const res = await app.inject({
        method: "DELETE",
        url: `/api/conversations/${id}`,
        headers: browser(s),
      });
      expect(res.statusCode).toBe(200);
    }

    async function reachedModel(content: string) {
      for (let i = 0; i < 200; i++) {
        if (fake.requests.some((r) => JSON.stringify(r.body ?? {}).includes(content))) return;
        await new Promise((r) => setTimeout(r, 10));
      }
      throw new Error(`no model request with ${content}`);
    }

    it("a conversation deleted while its turn waits for the model is a 404, not a 500", async () => {
      const id = await create(s);
      const content = `WAIT deleted-before-start ${database}`;
      const pending = send(id, { content });
      await reachedModel(content);
      await remove(id);
      fake.releaseHeld();
      const res = await pending;
      expect(res.status).toBe(404);
      expect(await res.json()).toEqual({
        error: { code: "NOT_FOUND", type: "not_found_error", message: "Conversation not found" },
      });
    });

    it("a conversation deleted while its answer streams ends the stream with an error event", async () => {
      const id = await create(s);
      const content = `HOLD deleted-mid-stream ${database}`;
      const res = await send(id, { content });
      expect(res.status).toBe(200);
      const reader = (res.body as ReadableStream<Uint8Array>).getReader();
      const decoder = new TextDecoder();
      let text = "";
      while (!text.includes("event: delta")) text += decoder.decode((await reader.read()).value);
      await remove(id);
      fake.releaseHeld();
      for (let r = await reader.read(); !r.done; r = await reader.read())
        text += decoder.decode(r.value);
      expect(parseEvents(text).at(-1)).toEqual({
        event: "error",
        data: {
          error: { code: "NOT_FOUND", type: "not_found_error", message: "Conversation not found" },
        },
      });
    });

    it("answers only what /docs/json declares: the turn's events and both export formats", async () => {
      const doc = (await app.inject({ method: "GET", url: "/docs/json" })).json();
      const ajv = new Ajv2020({ strict: false });
      addFormats.default(ajv);
      type Content = Record<string, { schema: Record<string, unknown> }>;
      const declared = (path: string, method: string): Content =>
        doc.paths[path][method].responses["200"].content;
      const turn = declared("/api/conversations/{id}/messages", "post");
      expect(Object.keys(turn)).toEqual(["text/event-stream"]);
      // Each event as schemathesis reads it ({event, data}); its data against the
      // contentSchema of the branch named by the event.
      const branches = (turn["text/event-stream"]?.schema.anyOf ?? []) as {
        properties: { event: { const?: string; enum?: string[] }; data: { contentSchema: object } };
      }[];
      const branch = (name: string) =>
        branches.find((b) => (b.properties.event.const ?? b.properties.event.enum?.[0]) === name);
      const id = await create(s);
      const res = await send(id, { content: "hello there" });
      expect(res.headers.get("content-type")).toMatch(/^text\/event-stream/);
      const failed = await send(id, { content: "MIDFAIL now" });
      const events = [...parseEvents(await res.text()), ...parseEvents(await failed.text())];
      expect(new Set(events.map((e) => e.event))).toEqual(
        new Set(["start", "delta", "done", "error"]),
      );
      const eventSchema = ajv.compile(turn["text/event-stream"]?.schema ?? {});
      for (const e of events) {
        const wire = { event: e.event, data: JSON.stringify(e.data) };
        expect(eventSchema(wire), `${e.event}: ${ajv.errorsText(eventSchema.errors)}`).toBe(true);
        const data = ajv.compile(branch(e.event)?.properties.data.contentSchema ?? false);
        expect(data(e.data), `${e.event} data: ${ajv.errorsText(data.errors)}`).toBe(true);
      }

      const exported = declared("/api/conversations/{id}/export", "get");
      expect(Object.keys(exported).sort()).toEqual(["application/json", "text/markdown"]);
      for (const format of ["json", "markdown"]) {
        const r = await app.inject({
          method: "GET",
          url: `/api/conversations/${id}/export?format=${format}`,
          headers: browser(s),
        });
        const type = String(r.headers["content-type"]).split(";")[0] as string;
        const schema = exported[type]?.schema;
        expect(schema, `${format}: ${type} declared`).toBeDefined();
        const check = ajv.compile(schema ?? {});
        expect(check(type === "application/json" ? r.json() : r.body)).toBe(true);
      }
    });

    it("lists newest first, searches titles and content, renames and deletes", async () => {
      const a = await create(s, "Alpha topic");
      const b = await create(s, "Beta topic");
      await (await send(b, { content: "talk about zebras" })).text();
      const list = await app.inject({
        method: "GET",
        url: "/api/conversations",
        headers: browser(s),
      });
      const ids = list.json().conversations.map((c: { id: string }) => c.id);
      expect(ids.indexOf(b)).toBeLessThan(ids.indexOf(a));
      const byTitle = await app.inject({
        method: "GET",
        url: "/api/conversations?q=alpha",
        headers: browser(s),
      });
      expect(byTitle.json().conversations.map((c: { id: string }) => c.id)).toEqual([a]);
      const byContent = await app.inject({
        method: "GET",
        url: "/api/conversations?q=ZEBRA",
        headers: browser(s),
      });
      expect(byContent.json().conversations.map((c: { id: string }) => c.id)).toEqual([b]);
      const literal = await app.inject({
        method: "GET",
        url: "/api/conversations?q=%25",
        headers: browser(s),
      });
      expect(literal.json().conversations).toEqual([]);

      const renamed = await app.inject({
        method: "PATCH",
        url: `/api/conversations/${a}`,
        headers: { ...browser(s), ...JSON_CT },
        payload: { title: "Renamed" },
      });
      expect(renamed.json().title).toBe("Renamed");
      const del = await app.inject({
        method: "DELETE",
        url: `/api/conversations/${a}`,
        headers: browser(s),
      });
      expect(del.statusCode).toBe(200);
      expect((await get(a)).statusCode).toBe(404);
    });

    it("hides other users' conversations behind 404", async () => {
      const id = await create(s, "private");
      expect((await get(id, other)).statusCode).toBe(404);
      const rename = await app.inject({
        method: "PATCH",
        url: `/api/conversations/${id}`,
        headers: { ...browser(other), ...JSON_CT },
        payload: { title: "hacked" },
      });
      expect(rename.statusCode).toBe(404);
      const del = await app.inject({
        method: "DELETE",
        url: `/api/conversations/${id}`,
        headers: browser(other),
      });
      expect(del.statusCode).toBe(404);
      const list = await app.inject({
        method: "GET",
        url: "/api/conversations",
        headers: browser(other),
      });
      expect(list.json().conversations).toEqual([]);
      expect((await get(id)).json().title).toBe("private");
    });

    it("exports as JSON and Markdown", async () => {
      const id = await create(s, "Export me");
      await (await send(id, { content: "hello there" })).text();
      const json = await app.inject({
        method: "GET",
        url: `/api/conversations/${id}/export?format=json`,
        headers: browser(s),
      });
      expect(json.headers["content-disposition"]).toContain(".json");
      expect(json.json().messages).toHaveLength(2);
      const md = await app.inject({
        method: "GET",
        url: `/api/conversations/${id}/export?format=markdown`,
        headers: browser(s),
      });
      expect(md.headers["content-type"]).toMatch(/text\/markdown/);
      expect(md.body).toContain("# Export me");
      expect(md.body).toContain("## User\n\nhello there");
      expect(md.body).toContain("## Assistant\n\nHello world");
    });
  });
