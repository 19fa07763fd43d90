import { randomUUID } from "node:crypto";
import { type Kysely, sql } from "kysely";
import type { Database } from "../db/database.js";
import type { AppTables, MessageTable } from "../db/schema.js";
import { badRequest, notFound } from "../errors.js";

export const UNTITLED = "New conversation";
const TITLE_LENGTH = 60;

export interface ConversationInfo {
  id: string;
  title: string;
  createdAt: Date;
  updatedAt: Date;
}

export interface MessageInfo {
  id: string;
  role: "user" | "assistant" | "system";
  content: string;
  createdAt: Date;
  finishReason?: string;
  /**
   * A user message: the model it was put to (absent: the default model). An answer: the model
   * that answered, which differs after a fallback.
   */
  model?: string;
}

export interface TurnRequest {
  content?: string | undefined;
  regenerate?: boolean | undefined;
  editMessageId?: string | undefined;
  /** The model the turn asks for; kept on its user message (the conversation's model). */
  model?: string | undefined;
}

/** The writes a planned turn makes when committed. */
type TurnWrite =
  | { kind: "edit"; id: string; seq: number; content: string; model: string | null }
  | { kind: "regenerate"; seq: number | null; question: string; model: string | null }
  | { kind: "new"; row: Omit<MessageTable, "seq"> };

export interface Turn {
  /** The new or edited user message, if this turn made one. */
  userMessage: MessageInfo | undefined;
  /** The whole conversation to answer, oldest first. */
  history: MessageInfo[];
  /** What commitTurn writes. */
  pending: { conversationId: string; now: number; title: string | undefined; write: TurnWrite };
}

export interface AssistantResult {
  id: string;
  content: string;
  finishReason: string;
  model: string | null;
  promptTokens: number | null;
  completionTokens: number | null;
}

type MessageRow = Pick<
  MessageTable,
  "id" | "role" | "content" | "finishReason" | "model" | "createdAt"
>;

function toMessage(row: MessageRow): MessageInfo {
  return {
    id: row.id,
    role: row.role,
    content: row.content,
    createdAt: new Date(row.createdAt),
    ...(row.finishReason ? { finishReason: row.finishReason } : {}),
    ...(row.model ? { model: row.model } : {}),
  };
}

function toConversation(row: {
  id: string;
  title: string | null;
  createdAt: number;
  updatedAt: number;
}): ConversationInfo {
  return {
    id: row.id,
    title: row.title ?? UNTITLED,
    createdAt: new Date(row.createdAt),
    updatedAt: new Date(row.updatedAt),
  };
}

export function titleFrom(content: string): string {
  const flat = content.replace(/\s+/g, " ").trim();
  return flat.length <= TITLE_LENGTH ? flat : `${flat.slice(0, TITLE_LENGTH - 1).trimEnd()}…`;
}

/** Conversations and their messages; every method is scoped to the owner's user id. */
export class ConversationService {
  constructor(private readonly db: Database) {}

  private get k() {
    return this.db.kysely;
  }

  async list(userId: string, q: string | undefined, limit: number, offset: number) {
    let query = this.k
      .selectFrom("conversation")
      .select(["id", "title", "createdAt", "updatedAt"])
      .where("userId", "=", userId);
    const term = q?.trim();
    if (term) {
      const like = `%${term.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
      // Case-insensitive on both: SQLite's LIKE already is (ASCII), PostgreSQL's is not.
      const op = sql.raw(this.db.dialect === "postgres" ? "ilike" : "like");
      query = query.where((eb) =>
        eb.or([
          sql<boolean>`title ${op} ${like} escape '\\'`,
          eb.exists(
            eb
              .selectFrom("message")
              .select("message.id")
              .whereRef("message.conversationId", "=", "conversation.id")
              .where(sql<boolean>`message.content ${op} ${like} escape '\\'`),
          ),
        ]),
      );
    }
    const rows = await query
      .orderBy("updatedAt", "desc")
      .orderBy("id")
      .limit(limit)
      .offset(offset)
      .execute();
    return rows.map(toConversation);
  }

  async create(userId: string, title: string | undefined): Promise<ConversationInfo> {
    const now = Date.now();
    const row = { id: randomUUID(), userId, title: title ?? null, createdAt: now, updatedAt: now };
    await this.k.insertInto("conversation").values(row).execute();
    return toConversation(row);
  }

  /** The conversation if `userId` owns it; 404 otherwise (also for other users' ones). */
  async find(userId: string, id: string): Promise<ConversationInfo> {
    const row = await this.k
      .selectFrom("conversation")
      .select(["id", "title", "createdAt", "updatedAt"])
      .where("id", "=", id)
      .where("userId", "=", userId)
      .executeTakeFirst();
    if (!row) throw notFound("Conversation");
    return toConversation(row);
  }

  async messages(conversationId: string): Promise<MessageInfo[]> {
    const rows = await this.k
      .selectFrom("message")
      .select(["id", "role", "content", "finishReason", "model", "createdAt"])
      .where("conversationId", "=", conversationId)
      .orderBy("seq")
      .execute();
    return rows.map(toMessage);
  }

  async get(userId: string, id: string) {
    const conversation = await this.find(userId, id);
    return { ...conversation, messages: await this.messages(id) };
  }

  async rename(userId: string, id: string, title: string): Promise<ConversationInfo> {
    await this.find(userId, id);
    await this.k
      .updateTable("conversation")
      .set({ title, updatedAt: Date.now() })
      .where("id", "=", id)
      .execute();
    return this.find(userId, id);
  }

  async delete(userId: string, id: string): Promise<void> {
    await this.find(userId, id);
    await this.k.deleteFrom("conversation").where("id", "=", id).execute();
  }

  /**
   * Checks and plans the user's side of a turn — a new message, a regenerate (drops the
   * last answer) or an edit (replaces a user message, drops what follows) — without
   * writing anything: `commitTurn` writes it once the model's answer has started, so a
   * turn refused before that (context too long, a limit, no server) leaves no row behind.
   */
  async prepareTurn(userId: string, id: string, req: TurnRequest): Promise<Turn> {
    const conversation = await this.find(userId, id);
    const modes = [req.content !== undefined && !req.editMessageId, req.regenerate === true];
    if (req.editMessageId) modes.push(true);
    if (modes.filter(Boolean).length !== 1) {
      throw badRequest("Send exactly one of content, regenerate or editMessageId");
    }
    const now = Date.now();
    const rows = await this.k
      .selectFrom("message")
      .select(["id", "seq", "role", "content", "finishReason", "model", "createdAt"])
      .where("conversationId", "=", id)
      .orderBy("seq")
      .execute();
    const { kept, userMessage: added, write } = planWrite(rows, req, id, now);
    let userMessage = added;
    const history = [...kept.map(toMessage), ...(userMessage ? [userMessage] : [])];
    const last = history.at(-1);
    if (last?.role !== "user") throw badRequest("The conversation does not end with a question");
    if (req.editMessageId) userMessage = last;
    const firstUser = history.find((m) => m.role === "user");
    const title =
      conversation.title === UNTITLED && firstUser ? titleFrom(firstUser.content) : undefined;
    return { userMessage, history, pending: { conversationId: id, now, title, write } };
  }

  /**
   * Writes a planned turn's user side in one transaction (see prepareTurn). The conversation
   * may have been deleted since prepareTurn (by another request while the model started):
   * 404, nothing written.
   */
  async commitTurn(turn: Turn): Promise<void> {
    const { conversationId: id, now, title, write } = turn.pending;
    await this.k.transaction().execute(async (trx) => {
      // First: it proves the conversation still exists and locks its row against a delete
      // until the messages below are in (PostgreSQL; SQLite's transaction holds the lock).
      const update: { updatedAt: number; title?: string } = { updatedAt: now };
      if (title !== undefined) update.title = title;
      await touch(trx, id, update);
      if (write.kind === "edit") {
        await trx
          .updateTable("message")
          .set({ content: write.content, model: write.model })
          .where("id", "=", write.id)
          .execute();
        await trx
          .deleteFrom("message")
          .where("conversationId", "=", id)
          .where("seq", ">", write.seq)
          .execute();
      } else if (write.kind === "regenerate") {
        if (write.seq !== null) {
          await trx
            .deleteFrom("message")
            .where("conversationId", "=", id)
            .where("seq", "=", write.seq)
            .execute();
        }
        await trx
          .updateTable("message")
          .set({ model: write.model })
          .where("id", "=", write.question)
          .execute();
      } else {
        await trx.insertInto("message").values(write.row).execute();
      }
    });
  }

  /**
   * Writes the assistant's answer once, when the stream ended (completed or not); 404 when
   * the conversation was deleted while the answer streamed.
   */
  async saveAssistant(conversationId: string, result: AssistantResult): Promise<MessageInfo> {
    const row = {
      id: result.id,
      conversationId,
      role: "assistant" as const,
      content: result.content,
      finishReason: result.finishReason,
      model: result.model,
      promptTokens: result.promptTokens,
      completionTokens: result.completionTokens,
      createdAt: Date.now(),
    };
    await this.k.transaction().execute(async (trx) => {
      await touch(trx, conversationId, { updatedAt: row.createdAt });
      await trx.insertInto("message").values(row).execute();
    });
    return toMessage(row);
  }
}

type PlannedRow = MessageRow & { seq: number };

/**
 * What a turn writes, and the stored messages it keeps: an edit replaces a user message
 * (and drops what follows), a regenerate drops the last answer, anything else adds a new
 * user message. The question asked gets the turn's model (null: the default model).
 */
function planWrite(rows: PlannedRow[], req: TurnRequest, conversationId: string, now: number) {
  const model = req.model || null;
  if (req.editMessageId) {
    if (req.content === undefined) throw badRequest("editMessageId needs content");
    const at = rows.findIndex((r) => r.id === req.editMessageId);
    const target = rows[at];
    if (!target) throw notFound("Message");
    if (target.role !== "user") throw badRequest("Only user messages can be edited");
    const write: TurnWrite = {
      kind: "edit",
      id: target.id,
      seq: target.seq,
      content: req.content,
      model,
    };
    return { kept: [...rows.slice(0, at), { ...target, content: req.content, model }], write };
  }
  if (req.regenerate) {
    const last = rows.at(-1);
    if (!last) throw badRequest("Nothing to regenerate");
    const kept = last.role === "assistant" ? rows.slice(0, -1) : rows;
    const question = kept.at(-1);
    if (question?.role !== "user")
      throw badRequest("The conversation does not end with a question");
    const seq = last.role === "assistant" ? last.seq : null;
    const write: TurnWrite = { kind: "regenerate", seq, question: question.id, model };
    return { kept: [...kept.slice(0, -1), { ...question, model }], write };
  }
  const row = {
    id: randomUUID(),
    conversationId,
    role: "user" as const,
    content: req.content ?? "",
    finishReason: null,
    model,
    promptTokens: null,
    completionTokens: null,
    createdAt: now,
  };
  return { kept: rows, userMessage: toMessage(row), write: { kind: "new", row } as TurnWrite };
}

/** Sets a conversation's fields, or throws 404 when it no longer exists. */
async function touch(
  trx: Kysely<AppTables>,
  id: string,
  update: { updatedAt: number; title?: string },
): Promise<void> {
  const result = await trx
    .updateTable("conversation")
    .set(update)
    .where("id", "=", id)
    .executeTakeFirst();
  if (result.numUpdatedRows === 0n) throw notFound("Conversation");
}
